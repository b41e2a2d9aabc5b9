// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { MAX_UPLOAD_BYTES, looksLikeImage, sizeProblem, typeProblem } from './files';

describe('file checks before upload', () => {
  it('accepts image/* types', () => {
    expect(looksLikeImage({ name: 'me.jpg', type: 'image/jpeg' })).toBe(true);
    expect(looksLikeImage({ name: 'scan.tiff', type: 'image/tiff' })).toBe(true);
    expect(typeProblem({ name: 'me.png', type: 'image/png' })).toBeNull();
  });

  it('rejects other types with a plain message naming the file', () => {
    expect(typeProblem({ name: 'notes.txt', type: 'text/plain' })).toBe(
      '"notes.txt" isn\'t a photo. Please choose an image file, such as a JPEG or PNG.',
    );
    expect(looksLikeImage({ name: 'clip.mp4', type: 'video/mp4' })).toBe(false);
  });

  it('judges files of unknown type by their name', () => {
    expect(looksLikeImage({ name: 'IMG_0001.HEIC', type: '' })).toBe(true);
    expect(looksLikeImage({ name: 'report.pdf', type: '' })).toBe(false);
  });

  it('rejects uploads over 15 MB and empty files', () => {
    expect(sizeProblem(MAX_UPLOAD_BYTES)).toBeNull();
    expect(sizeProblem(MAX_UPLOAD_BYTES + 1)).toMatch(/the limit is 15 MB/);
    expect(sizeProblem(18.4 * 1024 * 1024)).toBe(
      'That photo is 18 MB; the limit is 15 MB. Please choose a smaller one.',
    );
    expect(sizeProblem(0)).toMatch(/empty/);
  });
});
