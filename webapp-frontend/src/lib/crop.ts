// The user's face thumbnails, cut in the browser from the uploaded photo with the API's boxes.
import type { Face, ImageSize } from '../api/contract';
import { cropSquare } from './geometry';

export const CROP_SIZE = 192;

/**
 * One JPEG data URL per face (null where it could not be made, e.g. a format the browser cannot
 * decode). The boxes are in the server's pixels; the bitmap is scaled to them first, in case the
 * browser decoded the photo at another size.
 */
export async function cropFaces(
  photo: Blob,
  faces: Face[],
  image: ImageSize,
  size = CROP_SIZE,
): Promise<(string | null)[]> {
  const none = faces.map(() => null);
  if (faces.length === 0 || typeof createImageBitmap !== 'function') return none;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(photo, { imageOrientation: 'from-image' });
  } catch {
    return none;
  }
  try {
    const sx = bitmap.width / image.width;
    const sy = bitmap.height / image.height;
    return faces.map((face) => {
      const square = cropSquare(face.box, image);
      const canvas = document.createElement('canvas');
      canvas.width = size;
      canvas.height = size;
      const context = canvas.getContext('2d');
      if (!context || square.width <= 0) return null;
      context.imageSmoothingQuality = 'high';
      context.drawImage(
        bitmap,
        square.x * sx,
        square.y * sy,
        square.width * sx,
        square.height * sy,
        0,
        0,
        size,
        size,
      );
      return canvas.toDataURL('image/jpeg', 0.9);
    });
  } catch {
    return none;
  } finally {
    bitmap.close();
  }
}
