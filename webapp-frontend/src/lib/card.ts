// The result card to share: the user's face beside the celebrity's, drawn in the browser on a
// canvas. Nothing of it goes to the server: the card is shared or downloaded from memory.
import type { Box, ImageSize, Match } from '../api/contract';
import { ageText, roundScore } from './format';
import { cropSquare, type Rect } from './geometry';

export const APP_NAME = 'lookalike';
/** Portrait 4:5, the size photo apps show whole; text is sized to stay legible on a phone. */
export const CARD_WIDTH = 1080;
export const CARD_HEIGHT = 1350;

const MARGIN = 60;
const GAP = 40;
const PHOTO_SIDE = (CARD_WIDTH - 2 * MARGIN - GAP) / 2; // 460
const PHOTO_TOP = 230;
const FONT = "'Inter Variable', 'Inter', system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

export interface CardText {
  name: string;
  /** "87 / 100" */
  score: string;
  /** "age 56 in 2003", or null when unknown. */
  age: string | null;
}

export interface TextSpot {
  text: string;
  x: number;
  y: number;
  /** Font size in card pixels (before any shrinking to fit). */
  size: number;
  weight: number;
  color: string;
}

export interface CardLayout {
  width: number;
  height: number;
  you: Rect;
  celebrity: Rect;
  texts: TextSpot[];
}

export function cardText(match: Pick<Match, 'name' | 'score' | 'age' | 'photo_year'>): CardText {
  return { name: match.name, score: `${roundScore(match.score)} / 100`, age: ageText(match) };
}

/** Where everything goes on the card (pure: the tests check it without a canvas). */
export function cardLayout(text: CardText): CardLayout {
  const centre = CARD_WIDTH / 2;
  const below = PHOTO_TOP + PHOTO_SIDE;
  const texts: TextSpot[] = [
    { text: 'My celebrity look-alike', x: centre, y: 140, size: 58, weight: 800, color: '#ffffff' },
    { text: 'Me', x: MARGIN + PHOTO_SIDE / 2, y: below + 60, size: 36, weight: 650, color: '#e9e5ff' },
    {
      text: 'Celebrity',
      x: MARGIN + PHOTO_SIDE + GAP + PHOTO_SIDE / 2,
      y: below + 60,
      size: 36,
      weight: 650,
      color: '#e9e5ff',
    },
    { text: text.name, x: centre, y: below + 180, size: 84, weight: 800, color: '#ffffff' },
    { text: text.score, x: centre, y: below + 300, size: 104, weight: 850, color: '#ffd6e4' },
    { text: 'look-alike score', x: centre, y: below + 352, size: 36, weight: 550, color: '#e9e5ff' },
  ];
  if (text.age) {
    texts.push({ text: text.age, x: centre, y: below + 420, size: 40, weight: 550, color: '#ffffff' });
  }
  texts.push({ text: APP_NAME, x: centre, y: CARD_HEIGHT - 56, size: 40, weight: 800, color: '#ffffff' });
  return {
    width: CARD_WIDTH,
    height: CARD_HEIGHT,
    you: { x: MARGIN, y: PHOTO_TOP, width: PHOTO_SIDE, height: PHOTO_SIDE },
    celebrity: { x: MARGIN + PHOTO_SIDE + GAP, y: PHOTO_TOP, width: PHOTO_SIDE, height: PHOTO_SIDE },
    texts,
  };
}

/** What drawing the card needs of a 2D context (a real one, or a test's recorder). */
export type CardContext = Pick<
  CanvasRenderingContext2D,
  | 'drawImage'
  | 'fillRect'
  | 'fillText'
  | 'measureText'
  | 'save'
  | 'restore'
  | 'beginPath'
  | 'roundRect'
  | 'clip'
  | 'createLinearGradient'
  | 'fillStyle'
  | 'font'
  | 'textAlign'
  | 'textBaseline'
  | 'imageSmoothingQuality'
>;

export interface CardImage {
  image: CanvasImageSource;
  /** The part of `image` to show (a square around the face). */
  source: Rect;
}

function fontOf(size: number, weight: number): string {
  return `${weight} ${size}px ${FONT}`;
}

/** Draw the card: background, both faces (rounded squares), and the text, each line fitted. */
export function drawCard(
  context: CardContext,
  layout: CardLayout,
  you: CardImage,
  celebrity: CardImage,
): void {
  const background = context.createLinearGradient(0, 0, layout.width, layout.height);
  background.addColorStop(0, '#4b3bd6');
  background.addColorStop(0.55, '#8a3fd1');
  background.addColorStop(1, '#d63f74');
  context.fillStyle = background;
  context.fillRect(0, 0, layout.width, layout.height);
  context.imageSmoothingQuality = 'high';

  for (const [picture, spot] of [
    [you, layout.you],
    [celebrity, layout.celebrity],
  ] as const) {
    context.save();
    context.beginPath();
    context.roundRect(spot.x, spot.y, spot.width, spot.height, 36);
    context.clip();
    context.fillStyle = '#2a2160';
    context.fillRect(spot.x, spot.y, spot.width, spot.height);
    const { source } = picture;
    context.drawImage(
      picture.image,
      source.x,
      source.y,
      source.width,
      source.height,
      spot.x,
      spot.y,
      spot.width,
      spot.height,
    );
    context.restore();
  }

  context.textAlign = 'center';
  context.textBaseline = 'alphabetic';
  const maxWidth = layout.width - 2 * MARGIN;
  for (const spot of layout.texts) {
    context.font = fontOf(spot.size, spot.weight);
    // Long names shrink until they fit (down to 60%), then the canvas squeezes the rest.
    let size = spot.size;
    while (size > spot.size * 0.6 && context.measureText(spot.text).width > maxWidth) {
      size -= 2;
      context.font = fontOf(size, spot.weight);
    }
    context.fillStyle = spot.color;
    context.fillText(spot.text, spot.x, spot.y, maxWidth);
  }
}

/** The source square of the user's face in a decoded photo (the API's box, in its pixels). */
export function faceSource(box: Box, image: ImageSize, bitmap: ImageSize): Rect {
  const square = cropSquare(box, image, 0.25);
  const sx = bitmap.width / image.width;
  const sy = bitmap.height / image.height;
  return { x: square.x * sx, y: square.y * sy, width: square.width * sx, height: square.height * sy };
}

/**
 * The index's thumbnails frame the face with 0.4 of its size on every side (1.8× the face); the
 * user's side shows 1.5× the face: keep the middle 1.5/1.8 of the thumbnail so both match.
 */
export function thumbnailSource(thumbnail: ImageSize): Rect {
  const keep = 1.5 / 1.8;
  const width = thumbnail.width * keep;
  const height = thumbnail.height * keep;
  return { x: (thumbnail.width - width) / 2, y: (thumbnail.height - height) / 2, width, height };
}

export function cardFileName(match: Pick<Match, 'celebrity_id'>): string {
  const slug = match.celebrity_id.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${APP_NAME}-${slug || 'match'}.png`;
}

async function loadCelebrity(url: string): Promise<ImageBitmap> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load the celebrity photo (${response.status})`);
  return createImageBitmap(await response.blob());
}

/** The page's font, in the weights the card uses (canvas text does not wait for web fonts). */
async function loadFonts(): Promise<void> {
  if (!document.fonts) return;
  await Promise.all([550, 650, 800, 850].map((weight) => document.fonts.load(fontOf(40, weight))))
    .then(() => undefined)
    .catch(() => undefined);
}

/** Make the card as a PNG blob, from the uploaded photo (in memory) and the match. */
export async function makeCard(
  photo: Blob,
  box: Box,
  image: ImageSize,
  match: Match,
): Promise<Blob> {
  const [mine, theirs] = await Promise.all([
    createImageBitmap(photo, { imageOrientation: 'from-image' }),
    loadCelebrity(match.photo_url),
    loadFonts(),
  ]);
  try {
    const canvas = document.createElement('canvas');
    canvas.width = CARD_WIDTH;
    canvas.height = CARD_HEIGHT;
    const context = canvas.getContext('2d');
    if (!context) throw new Error('this browser cannot draw the card');
    drawCard(
      context,
      cardLayout(cardText(match)),
      { image: mine, source: faceSource(box, image, mine) },
      { image: theirs, source: thumbnailSource(theirs) },
    );
    return await new Promise<Blob>((resolve, reject) => {
      canvas.toBlob(
        (blob) => (blob ? resolve(blob) : reject(new Error('the card could not be encoded'))),
        'image/png',
      );
    });
  } finally {
    mine.close();
    theirs.close();
  }
}

/** Whether this browser can hand a PNG file to the system's share sheet. */
export function canShareFiles(): boolean {
  if (typeof navigator.share !== 'function' || typeof navigator.canShare !== 'function') {
    return false;
  }
  try {
    const probe = new File([new Uint8Array(8)], 'card.png', { type: 'image/png' });
    return navigator.canShare({ files: [probe] });
  } catch {
    return false;
  }
}

export type Delivery = 'shared' | 'downloaded' | 'cancelled';

/** Open the share sheet with the card where files can be shared; download it elsewhere. */
export async function shareOrDownload(blob: Blob, fileName: string, title: string): Promise<Delivery> {
  const file = new File([blob], fileName, { type: 'image/png' });
  if (canShareFiles() && navigator.canShare({ files: [file] })) {
    try {
      await navigator.share({ files: [file], title, text: title });
      return 'shared';
    } catch (error) {
      // Closing the share sheet is not a failure.
      if (error instanceof DOMException && error.name === 'AbortError') return 'cancelled';
      throw error;
    }
  }
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.rel = 'noopener';
  document.body.append(link);
  link.click();
  link.remove();
  // Give the browser time to start the download before the memory is released.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return 'downloaded';
}
