// Big photos are shrunk in the browser before upload: faster uploads, and the server's pixel limit
// is never hit. createImageBitmap with imageOrientation 'from-image' applies the EXIF orientation,
// so the re-encoded JPEG is upright and carries no orientation tag. Small photos go as they are.
import type { ImageSize } from '../api/contract';

export const MAX_SIDE = 1600;
export const JPEG_QUALITY = 0.9;

export interface PreparedPhoto {
  blob: Blob;
  fileName: string;
  /** True when the photo was re-encoded here. */
  resized: boolean;
}

/** The size to shrink to, or null when the longest side is already at most `maxSide`. */
export function downscaleTarget(size: ImageSize, maxSide = MAX_SIDE): ImageSize | null {
  const longest = Math.max(size.width, size.height);
  if (!(longest > maxSide)) return null;
  const scale = maxSide / longest;
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

/** "holiday.HEIC" -> "holiday.jpg"; a nameless blob becomes "photo.jpg". */
export function jpegName(name: string): string {
  const base = name.replace(/\.[^./\\]*$/, '').trim();
  return `${base || 'photo'}.jpg`;
}

function canvasToJpeg(canvas: HTMLCanvasElement, quality: number): Promise<Blob | null> {
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
}

async function reencode(bitmap: ImageBitmap, target: ImageSize): Promise<Blob | null> {
  const canvas = document.createElement('canvas');
  canvas.width = target.width;
  canvas.height = target.height;
  const context = canvas.getContext('2d');
  if (!context) return null;
  context.fillStyle = '#ffffff'; // transparent pixels would turn black in a JPEG
  context.fillRect(0, 0, target.width, target.height);
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(bitmap, 0, 0, target.width, target.height);
  return canvasToJpeg(canvas, JPEG_QUALITY);
}

/**
 * The photo to upload: the file itself when it is small or the browser cannot decode it (the server
 * then decides), otherwise an upright JPEG whose longest side is MAX_SIDE.
 */
export async function preparePhoto(file: File): Promise<PreparedPhoto> {
  const asIs: PreparedPhoto = { blob: file, fileName: file.name || 'photo', resized: false };
  if (typeof createImageBitmap !== 'function') return asIs;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return asIs;
  }
  try {
    const target = downscaleTarget({ width: bitmap.width, height: bitmap.height });
    if (!target) return asIs;
    const blob = await reencode(bitmap, target);
    if (!blob || blob.size === 0) return asIs;
    return { blob, fileName: jpegName(file.name), resized: true };
  } catch {
    return asIs;
  } finally {
    bitmap.close();
  }
}
