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

export interface DrawnText {
  text: string;
  x: number;
  y: number;
  font: string;
  maxWidth: number | undefined;
}

/**
 * A 2D context that records what is drawn: images with their source and target rectangles, and
 * text with its font. `measureText` is 0.6 × the font size per character, like a real sans font.
 */
export function recordingContext() {
  const images: { image: unknown; source: number[]; target: number[] }[] = [];
  const texts: DrawnText[] = [];
  const gradient = { addColorStop: vi.fn() };
  const context = {
    fillStyle: '' as unknown,
    font: '10px sans-serif',
    textAlign: 'start',
    textBaseline: 'alphabetic',
    imageSmoothingQuality: 'low',
    save: vi.fn(),
    restore: vi.fn(),
    beginPath: vi.fn(),
    roundRect: vi.fn(),
    clip: vi.fn(),
    fillRect: vi.fn(),
    createLinearGradient: vi.fn(() => gradient),
    drawImage: vi.fn((image: unknown, ...numbers: number[]) => {
      images.push({ image, source: numbers.slice(0, 4), target: numbers.slice(4, 8) });
    }),
    fillText: vi.fn((text: string, x: number, y: number, maxWidth?: number) => {
      texts.push({ text, x, y, font: context.font, maxWidth });
    }),
    measureText: vi.fn((text: string) => ({ width: text.length * 0.6 * fontSize(context.font) })),
  };
  return { context, images, texts };
}

/** The pixel size in a CSS font shorthand such as "800 84px Inter". */
export function fontSize(font: string): number {
  const found = /(\d+(?:\.\d+)?)px/.exec(font);
  return found ? Number(found[1]) : 0;
}
