// Face boxes arrive as [x, y, w, h] in pixels of the decoded, EXIF-upright image (response.image).
import type { Box, ImageSize } from '../api/contract';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

/** The part of a box that lies inside the image. */
export function clipBox(box: Box, image: ImageSize): Rect {
  const [x, y, w, h] = box;
  const left = clamp(x, 0, image.width);
  const top = clamp(y, 0, image.height);
  const right = clamp(x + w, 0, image.width);
  const bottom = clamp(y + h, 0, image.height);
  return { x: left, y: top, width: right - left, height: bottom - top };
}

/** A box scaled from the image's pixels to a displayed size (e.g. the <img> on screen). */
export function scaleBox(box: Box, from: ImageSize, to: ImageSize): Rect {
  const clipped = clipBox(box, from);
  const sx = from.width > 0 ? to.width / from.width : 0;
  const sy = from.height > 0 ? to.height / from.height : 0;
  return {
    x: clipped.x * sx,
    y: clipped.y * sy,
    width: clipped.width * sx,
    height: clipped.height * sy,
  };
}

/** A box as percentages of the image, for CSS that follows the displayed size by itself. */
export function boxToPercent(box: Box, image: ImageSize): Rect {
  return scaleBox(box, image, { width: 100, height: 100 });
}

/**
 * The square around a face to cut out as its thumbnail: the box grown by `margin` of its larger
 * side on every side, then kept inside the image (in the same pixels as `image`).
 */
export function cropSquare(box: Box, image: ImageSize, margin = 0.2): Rect {
  const [x, y, w, h] = box;
  const side = Math.min(Math.max(w, h) * (1 + 2 * margin), image.width, image.height);
  const cx = x + w / 2;
  const cy = y + h / 2;
  return {
    x: clamp(cx - side / 2, 0, image.width - side),
    y: clamp(cy - side / 2, 0, image.height - side),
    width: side,
    height: side,
  };
}
