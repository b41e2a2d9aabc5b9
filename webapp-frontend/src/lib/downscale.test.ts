import { describe, expect, it, vi } from 'vitest';
import { stubBitmap, stubCanvas } from '../test/canvas';
import { JPEG_QUALITY, MAX_SIDE, downscaleTarget, jpegName, preparePhoto } from './downscale';

describe('downscaleTarget (when to shrink before upload)', () => {
  it('leaves photos whose longest side is at most 1600 px alone', () => {
    expect(MAX_SIDE).toBe(1600);
    expect(downscaleTarget({ width: 1600, height: 1200 })).toBeNull();
    expect(downscaleTarget({ width: 800, height: 1600 })).toBeNull();
    expect(downscaleTarget({ width: 640, height: 480 })).toBeNull();
  });

  it('shrinks bigger photos so the longest side is 1600 px, keeping the aspect ratio', () => {
    expect(downscaleTarget({ width: 4000, height: 3000 })).toEqual({ width: 1600, height: 1200 });
    expect(downscaleTarget({ width: 3024, height: 4032 })).toEqual({ width: 1200, height: 1600 });
    expect(downscaleTarget({ width: 1601, height: 10 })).toEqual({ width: 1600, height: 10 });
  });

  it('never returns a zero-pixel side for extreme panoramas', () => {
    expect(downscaleTarget({ width: 20000, height: 5 })).toEqual({ width: 1600, height: 1 });
  });
});

describe('jpegName', () => {
  it('renames to .jpg', () => {
    expect(jpegName('holiday.HEIC')).toBe('holiday.jpg');
    expect(jpegName('me.final.png')).toBe('me.final.jpg');
    expect(jpegName('')).toBe('photo.jpg');
  });
});

describe('preparePhoto', () => {
  const photo = (size = 5_000_000) =>
    new File([new Uint8Array(size)], 'big.png', { type: 'image/png' });

  it('re-encodes a big photo as an upright JPEG of at most 1600 px', async () => {
    const { bitmap, create } = stubBitmap(4000, 3000);
    const canvas = stubCanvas();
    const file = photo();

    const prepared = await preparePhoto(file);

    expect(create).toHaveBeenCalledWith(file, { imageOrientation: 'from-image' });
    expect(canvas.sizes).toEqual([{ width: 1600, height: 1200 }]);
    expect(canvas.context.drawImage).toHaveBeenCalledWith(bitmap, 0, 0, 1600, 1200);
    expect(canvas.toBlob).toHaveBeenCalledWith(expect.any(Function), 'image/jpeg', JPEG_QUALITY);
    expect(prepared.resized).toBe(true);
    expect(prepared.fileName).toBe('big.jpg');
    expect(prepared.blob.type).toBe('image/jpeg');
    expect(bitmap.close).toHaveBeenCalled();
  });

  it('sends a small photo as it is', async () => {
    const { bitmap } = stubBitmap(1200, 900);
    const canvas = stubCanvas();
    const file = photo(200_000);

    const prepared = await preparePhoto(file);

    expect(prepared).toEqual({ blob: file, fileName: 'big.png', resized: false });
    expect(canvas.toBlob).not.toHaveBeenCalled();
    expect(bitmap.close).toHaveBeenCalled();
  });

  it('sends the file as it is when the browser cannot decode it (the server decides)', async () => {
    vi.stubGlobal('createImageBitmap', vi.fn(async () => Promise.reject(new Error('bad'))));
    const file = new File(['not really'], 'x.jpg', { type: 'image/jpeg' });
    expect(await preparePhoto(file)).toEqual({ blob: file, fileName: 'x.jpg', resized: false });
  });

  it('sends the file as it is where createImageBitmap does not exist', async () => {
    vi.stubGlobal('createImageBitmap', undefined);
    const file = photo(10);
    expect((await preparePhoto(file)).blob).toBe(file);
  });
});
