// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { ageText, plural, scoreText, similarityText } from './format';

describe('formatting', () => {
  it('shows the score out of 100, rounded and kept in range', () => {
    expect(scoreText(87.4)).toBe('87 / 100');
    expect(scoreText(93.5)).toBe('94 / 100');
    expect(scoreText(104)).toBe('100 / 100');
    expect(scoreText(-3)).toBe('0 / 100');
  });

  it('writes the age in the photo only with what is known', () => {
    expect(ageText({ age: 56, photo_year: 2003 })).toBe('age 56 in 2003');
    expect(ageText({ age: 56, photo_year: null })).toBe('age 56');
    expect(ageText({ age: null, photo_year: 2003 })).toBe('photo from 2003');
    expect(ageText({ age: null, photo_year: null })).toBeNull();
  });

  it('prints similarity with three decimals', () => {
    expect(similarityText(0.612)).toBe('0.612');
    expect(similarityText(-0.05)).toBe('-0.050');
  });

  it('pluralises', () => {
    expect(plural(1, 'face')).toBe('1 face');
    expect(plural(1312, 'photo')).toBe('1,312 photos');
    expect(plural(2, 'celebrity', 'celebrities')).toBe('2 celebrities');
  });
});
