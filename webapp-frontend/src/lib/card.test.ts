import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Box, ImageSize } from '../api/contract';
import { fontSize, recordingContext } from '../test/canvas';
import { match } from '../test/fixtures';
import {
  APP_NAME,
  CARD_HEIGHT,
  CARD_WIDTH,
  type CardContext,
  type CardLayout,
  cardFileName,
  cardLayout,
  cardText,
  drawCard,
  faceSource,
  makeCard,
  shareOrDownload,
} from './card';
import type { Rect } from './geometry';

const PHONE_WIDTH = 390;

function inside(rect: Rect, width = CARD_WIDTH, height = CARD_HEIGHT): boolean {
  return rect.x >= 0 && rect.y >= 0 && rect.x + rect.width <= width && rect.y + rect.height <= height;
}

function overlap(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function textOf(layout: CardLayout, text: string) {
  const spot = layout.texts.find((candidate) => candidate.text === text);
  if (!spot) throw new Error(`no "${text}" on the card`);
  return spot;
}

describe('card layout', () => {
  const layout = cardLayout(cardText(match({ name: 'George W Bush', score: 93.4 })));

  it('is a 1080×1350 portrait with both faces side by side, the same size, not overlapping', () => {
    expect([layout.width, layout.height]).toEqual([1080, 1350]);
    expect(inside(layout.you) && inside(layout.celebrity)).toBe(true);
    expect(overlap(layout.you, layout.celebrity)).toBe(false);
    expect(layout.you.y).toBe(layout.celebrity.y);
    expect(layout.you.x).toBeLessThan(layout.celebrity.x);
    expect(layout.you.width).toBe(layout.celebrity.width);
    expect(layout.you.width).toBe(layout.you.height);
    // Each face is over a third of the card's width: ~170 px wide on a 390-px phone screen.
    expect(layout.you.width * (PHONE_WIDTH / CARD_WIDTH)).toBeGreaterThan(160);
  });

  it('carries the name, the score, the age line and the app name, legible at phone size', () => {
    const name = textOf(layout, 'George W Bush');
    const score = textOf(layout, '93 / 100');
    const age = textOf(layout, 'age 56 in 2003');
    const app = textOf(layout, APP_NAME);
    // Below the photos, in reading order, within the card.
    const photosBottom = layout.you.y + layout.you.height;
    expect(photosBottom).toBeLessThan(name.y - name.size);
    expect(name.y).toBeLessThan(score.y);
    expect(score.y).toBeLessThan(age.y);
    expect(age.y).toBeLessThan(app.y);
    expect(app.y).toBeLessThanOrEqual(CARD_HEIGHT);
    // Shown 390 px wide, the smallest text is still ≥ 13 px, the name and score much larger.
    const smallest = Math.min(...layout.texts.map((text) => text.size));
    expect(smallest * (PHONE_WIDTH / CARD_WIDTH)).toBeGreaterThanOrEqual(13);
    expect(name.size * (PHONE_WIDTH / CARD_WIDTH)).toBeGreaterThanOrEqual(28);
    expect(score.size).toBeGreaterThan(name.size);
  });

  it('leaves the age line out when it is unknown', () => {
    const noAge = cardLayout(cardText(match({ age: null, photo_year: null })));
    expect(noAge.texts.map((text) => text.text)).not.toContain('age 56 in 2003');
    expect(noAge.texts).toHaveLength(layout.texts.length - 1);
  });
});

describe('drawing the card', () => {
  const you = { image: { tag: 'you' } as unknown as CanvasImageSource, source: { x: 10, y: 20, width: 300, height: 300 } };
  const celebrity = {
    image: { tag: 'celebrity' } as unknown as CanvasImageSource,
    source: { x: 0, y: 0, width: 160, height: 160 },
  };

  it('draws both faces into their squares, and every text line', () => {
    const { context, images, texts } = recordingContext();
    const layout = cardLayout(cardText(match()));
    drawCard(context as unknown as CardContext, layout, you, celebrity);

    expect(images).toHaveLength(2);
    const [first, second] = images;
    expect(first?.image).toBe(you.image);
    expect(first?.source).toEqual([10, 20, 300, 300]);
    expect(first?.target).toEqual([layout.you.x, layout.you.y, layout.you.width, layout.you.height]);
    expect(second?.image).toBe(celebrity.image);
    expect(second?.target).toEqual([
      layout.celebrity.x,
      layout.celebrity.y,
      layout.celebrity.width,
      layout.celebrity.height,
    ]);
    expect(texts.map((text) => text.text)).toEqual(layout.texts.map((text) => text.text));
    expect(context.fillRect).toHaveBeenCalledWith(0, 0, CARD_WIDTH, CARD_HEIGHT);
    expect(context.clip).toHaveBeenCalledTimes(2); // rounded corners on both photos
  });

  it('shrinks a long name until it fits the card', () => {
    const { context, texts } = recordingContext();
    const name = 'Maria Magdalena Alexandrina Wilhelmina von Something-Longer';
    const layout = cardLayout(cardText(match({ name })));
    drawCard(context as unknown as CardContext, layout, you, celebrity);
    const drawn = texts.find((text) => text.text === name);
    expect(drawn).toBeDefined();
    const size = fontSize(drawn?.font ?? '');
    expect(size).toBeLessThan(textOf(layout, name).size);
    expect(size).toBeGreaterThanOrEqual(textOf(layout, name).size * 0.6 - 2);
    expect(drawn?.maxWidth).toBeLessThanOrEqual(CARD_WIDTH - 100);
  });
});

describe('face source', () => {
  it('is a square around the box, in the decoded bitmap’s pixels', () => {
    const box: Box = [400, 100, 200, 240];
    const image: ImageSize = { width: 1000, height: 800 };
    const same = faceSource(box, image, image);
    expect(same.width).toBe(same.height);
    expect(same.width).toBeCloseTo(240 * 1.5);
    expect(same.x + same.width / 2).toBeCloseTo(500);
    const half = faceSource(box, image, { width: 500, height: 400 });
    expect(half.width).toBeCloseTo(same.width / 2);
    expect(half.x).toBeCloseTo(same.x / 2);
  });
});

describe('file name', () => {
  it('is the app and the celebrity, safe for any file system', () => {
    expect(cardFileName(match({ celebrity_id: 'george-w-bush' }))).toBe('lookalike-george-w-bush.png');
    expect(cardFileName(match({ celebrity_id: 'Zoë / Saldaña?' }))).toBe('lookalike-zo-salda-a.png');
    expect(cardFileName(match({ celebrity_id: '???' }))).toBe('lookalike-match.png');
  });
});

describe('share or download', () => {
  afterEach(() => {
    Reflect.deleteProperty(navigator, 'share');
    Reflect.deleteProperty(navigator, 'canShare');
  });

  it('downloads the PNG where files cannot be shared', async () => {
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (
      this: HTMLAnchorElement,
    ) {
      expect(this.download).toBe('lookalike-x.png');
      expect(this.href).toMatch(/^blob:/);
      expect(document.body.contains(this)).toBe(true);
    });
    const how = await shareOrDownload(new Blob(['png'], { type: 'image/png' }), 'lookalike-x.png', 'Me');
    expect(how).toBe('downloaded');
    expect(click).toHaveBeenCalledTimes(1);
    expect(document.querySelector('a[download]')).toBeNull();
  });

  it('opens the share sheet with the PNG file where it can', async () => {
    const share = vi.fn(async (data: ShareData) => {
      expect(data.files?.[0]?.type).toBe('image/png');
      expect(data.files?.[0]?.name).toBe('lookalike-x.png');
    });
    Object.defineProperty(navigator, 'share', { value: share, configurable: true });
    Object.defineProperty(navigator, 'canShare', { value: () => true, configurable: true });
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click');
    expect(await shareOrDownload(new Blob(['png']), 'lookalike-x.png', 'I look like X')).toBe('shared');
    expect(share).toHaveBeenCalledTimes(1);
    expect(click).not.toHaveBeenCalled();
  });

  it('treats a closed share sheet as cancelled, not as a failure', async () => {
    const share = vi.fn(async () => {
      throw new DOMException('closed', 'AbortError');
    });
    Object.defineProperty(navigator, 'share', { value: share, configurable: true });
    Object.defineProperty(navigator, 'canShare', { value: () => true, configurable: true });
    expect(await shareOrDownload(new Blob(['png']), 'a.png', 'x')).toBe('cancelled');
  });
});

describe('makeCard', () => {
  it('draws the uploaded face and the fetched celebrity photo on a 1080×1350 PNG', async () => {
    const { context, images } = recordingContext();
    const sizes: number[][] = [];
    vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockImplementation(function (
      this: HTMLCanvasElement,
    ) {
      sizes.push([this.width, this.height]);
      return context as never;
    });
    vi.spyOn(HTMLCanvasElement.prototype, 'toBlob').mockImplementation((callback, type) =>
      callback(new Blob(['png'], { type })),
    );
    const photoBitmap = { width: 1000, height: 800, close: vi.fn() };
    const celebrityBitmap = { width: 160, height: 160, close: vi.fn() };
    const celebrityBlob = new Blob(['jpeg']);
    vi.stubGlobal(
      'createImageBitmap',
      vi.fn(async (source: Blob) => (source === celebrityBlob ? celebrityBitmap : photoBitmap)),
    );
    const fetchMock = vi.fn(async () => ({ ok: true, status: 200, blob: async () => celebrityBlob }));
    vi.stubGlobal('fetch', fetchMock);

    const blob = await makeCard(new Blob(['photo']), [400, 100, 200, 240], { width: 1000, height: 800 }, match());

    expect(blob.type).toBe('image/png');
    expect(sizes).toEqual([[CARD_WIDTH, CARD_HEIGHT]]);
    expect(fetchMock).toHaveBeenCalledWith('/api/photos/1234');
    expect(images.map((drawn) => drawn.image)).toEqual([photoBitmap, celebrityBitmap]);
    // The middle of the thumbnail, framed like the user's face (1.5× the face, not 1.8×).
    const [x, y, width, height] = images[1]?.source ?? [];
    expect(width).toBeCloseTo(160 / 1.2);
    expect(height).toBeCloseTo(160 / 1.2);
    expect((x ?? 0) + (width ?? 0) / 2).toBeCloseTo(80);
    expect((y ?? 0) + (height ?? 0) / 2).toBeCloseTo(80);
    expect(photoBitmap.close).toHaveBeenCalled();
    expect(celebrityBitmap.close).toHaveBeenCalled();
  });
});
