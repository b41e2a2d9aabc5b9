// Checks made before anything is uploaded, so that obviously wrong files get a plain answer at once.

import { MAX_UPLOAD_BYTES } from '../api/contract';

/** Most bytes sent to the server in one upload: the server's own limit (api/contract.ts). */
export { MAX_UPLOAD_BYTES };

const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'bmp', 'tif', 'tiff', 'avif', 'heic'];

export function formatMegabytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  return `${mb >= 10 ? Math.round(mb) : mb.toFixed(1)} MB`;
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
}

/** True for image/* files; files of unknown type count when their name ends like an image. */
export function looksLikeImage(file: Pick<File, 'name' | 'type'>): boolean {
  if (file.type) return file.type.startsWith('image/');
  return IMAGE_EXTENSIONS.includes(extensionOf(file.name));
}

/** A message for a file that is not a picture at all, or null when it may go on. */
export function typeProblem(file: Pick<File, 'name' | 'type'>): string | null {
  if (looksLikeImage(file)) return null;
  const name = file.name ? `"${file.name}"` : 'That file';
  return `${name} isn't a photo. Please choose an image file, such as a JPEG or PNG.`;
}

/** A message for an upload over the size limit, or null when it fits. */
export function sizeProblem(size: number, limit = MAX_UPLOAD_BYTES): string | null {
  if (size === 0) return 'That file is empty. Please choose another photo.';
  if (size <= limit) return null;
  return `That photo is ${formatMegabytes(size)}; the limit is ${formatMegabytes(limit)}. Please choose a smaller one.`;
}
