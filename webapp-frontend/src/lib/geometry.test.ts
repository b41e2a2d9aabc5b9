// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { boxToPercent, clipBox, cropSquare, scaleBox } from './geometry';

describe('scaleBox', () => {
  it('scales a box from image pixels to the displayed size', () => {
    // The contract's example: a 1024×768 image shown 512×384 wide.
    expect(scaleBox([412, 130, 180, 224], { width: 1024, height: 768 }, { width: 512, height: 384 }))
      .toEqual({ x: 206, y: 65, width: 90, height: 112 });
  });

  it('scales each axis on its own when the aspect ratio changes', () => {
    expect(scaleBox([100, 100, 50, 50], { width: 200, height: 400 }, { width: 400, height: 200 }))
      .toEqual({ x: 200, y: 50, width: 100, height: 25 });
  });

  it('keeps boxes that reach past the edges inside the image', () => {
    const image = { width: 100, height: 80 };
    expect(clipBox([-10, 70, 40, 30], image)).toEqual({ x: 0, y: 70, width: 30, height: 10 });
    expect(scaleBox([-10, 70, 40, 30], image, { width: 200, height: 160 })).toEqual({
      x: 0,
      y: 140,
      width: 60,
      height: 20,
    });
  });

  it('survives an empty image size', () => {
    expect(scaleBox([1, 2, 3, 4], { width: 0, height: 0 }, { width: 10, height: 10 })).toEqual({
      x: 0,
      y: 0,
      width: 0,
      height: 0,
    });
  });
});

describe('boxToPercent', () => {
  it('gives CSS percentages of the image', () => {
    const rect = boxToPercent([500, 250, 250, 100], { width: 1000, height: 500 });
    expect(rect).toEqual({ x: 50, y: 50, width: 25, height: 20 });
  });
});

describe('cropSquare', () => {
  it('grows the face box into a square with a margin, centred on the face', () => {
    const square = cropSquare([400, 300, 100, 120], { width: 1000, height: 1000 }, 0.25);
    expect(square.width).toBe(180);
    expect(square.height).toBe(180);
    expect(square.x + square.width / 2).toBe(450);
    expect(square.y + square.height / 2).toBe(360);
  });

  it('stays inside the image near its edges', () => {
    const square = cropSquare([0, 0, 100, 100], { width: 300, height: 200 });
    expect(square.x).toBe(0);
    expect(square.y).toBe(0);
    const big = cropSquare([10, 10, 180, 180], { width: 300, height: 200 });
    expect(big.height).toBe(200);
    expect(big.y).toBe(0);
    expect(big.x + big.width).toBeLessThanOrEqual(300);
  });
});
