// jsdom has neither createImageBitmap nor a drawing canvas: these stand-ins record what is drawn.
import { vi } from 'vitest';

export interface FakeBitmap {
  width: number;
  height: number;
  close: () => void;
}

export function stubBitmap(width: number, height: number) {
  const bitmap: FakeBitmap = { width, height, close: vi.fn() };
  const create = vi.fn(async () => bitmap);
  vi.stubGlobal('createImageBitmap', create);
  return { bitmap, create };
}

export function stubCanvas() {
  const context = {
    drawImage: vi.fn(),
    fillRect: vi.fn(),
    fillStyle: '',
    imageSmoothingEnabled: false,
    imageSmoothingQuality: 'low',
  };
  const sizes: { width: number; height: number }[] = [];
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockImplementation(function (
    this: HTMLCanvasElement,
  ) {
    sizes.push({ width: this.width, height: this.height });
    return context as never;
  });
  const toBlob = vi
    .spyOn(HTMLCanvasElement.prototype, 'toBlob')
    .mockImplementation((callback: BlobCallback, type?: string) => {
      callback(new Blob(['x'.repeat(1000)], { type }));
    });
  const toDataURL = vi
    .spyOn(HTMLCanvasElement.prototype, 'toDataURL')
    .mockImplementation(() => 'data:image/jpeg;base64,FACE');
  return { context, sizes, toBlob, toDataURL };
}
