import type { Match } from '../api/contract';

export function roundScore(score: number): number {
  return Math.round(Math.min(100, Math.max(0, score)));
}

/** "87 / 100" */
export function scoreText(score: number): string {
  return `${roundScore(score)} / 100`;
}

/** "age 56 in 2003", "age 56", "photo from 2003", or null when neither is known. */
export function ageText(match: Pick<Match, 'age' | 'photo_year'>): string | null {
  const { age, photo_year: year } = match;
  if (age != null && year != null) return `age ${age} in ${year}`;
  if (age != null) return `age ${age}`;
  if (year != null) return `photo from ${year}`;
  return null;
}

/** "0.612" */
export function similarityText(similarity: number): string {
  return similarity.toFixed(3);
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count.toLocaleString('en-US')} ${count === 1 ? one : many}`;
}
