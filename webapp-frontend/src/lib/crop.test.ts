import { describe, expect, it, vi } from 'vitest';
import { ONE_FACE, TWO_FACES } from '../test/fixtures';
import { stubBitmap, stubCanvas } from '../test/canvas';
import { CROP_SIZE, cropFaces } from './crop';

describe('cropFaces', () => {
  it('cuts each face from the photo with its box (grown to a square) via a canvas', async () => {
    const { bitmap } = stubBitmap(2000, 1000);
    const canvas = stubCanvas();

    const crops = await cropFaces(new Blob(['x']), TWO_FACES.faces, TWO_FACES.image);

    expect(crops).toEqual(['data:image/jpeg;base64,FACE', 'data:image/jpeg;base64,FACE']);
    // Face 1: box [1200, 200, 300, 300] with a 20% margin → a 420 px square around its centre.
    expect(canvas.context.drawImage).toHaveBeenNthCalledWith(
      1, bitmap, 1140, 140, 420, 420, 0, 0, CROP_SIZE, CROP_SIZE,
    );
    expect(bitmap.close).toHaveBeenCalled();
  });

  it("scales boxes when the browser decodes the photo at another size than the server's", async () => {
    const { bitmap } = stubBitmap(512, 384); // half of the response's 1024×768
    const canvas = stubCanvas();
    await cropFaces(new Blob(['x']), ONE_FACE.faces, ONE_FACE.image);
    const [, x, y, w, h] = canvas.context.drawImage.mock.calls[0] as number[];
    expect(bitmap.width / ONE_FACE.image.width).toBe(0.5);
    // Box [412, 130, 180, 224] → a 313.6 px square at (345.2, 85.2) in server pixels; halved here.
    const expected = [172.6, 42.6, 156.8, 156.8];
    [x, y, w, h].forEach((value, index) => expect(value).toBeCloseTo(expected[index] as number, 6));
  });

  it('gives nulls (placeholders) when the photo cannot be decoded', async () => {
    vi.stubGlobal('createImageBitmap', vi.fn(async () => Promise.reject(new Error('tiff'))));
    expect(await cropFaces(new Blob(['x']), TWO_FACES.faces, TWO_FACES.image)).toEqual([null, null]);
  });
});
