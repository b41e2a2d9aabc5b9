import { describe, expect, it } from 'vitest';
import { EXPLANATION } from '../test/fixtures';
import { heatLevels, rankRegions, svgPoints } from './explain';

describe('rankRegions', () => {
  it('orders regions most alike first and words their strength against the strongest', () => {
    const shuffled = [...EXPLANATION.regions].reverse();
    const ranked = rankRegions(shuffled);
    expect(ranked.map((region) => region.region)).toEqual(['eyes', 'nose', 'mouth', 'brows', 'jaw']);
    expect(ranked.map((region) => region.strength)).toEqual([
      'strong',
      'moderate',
      'slight',
      'neutral',
      'differs',
    ]);
    expect(ranked[0]?.share).toBe(1);
    expect(ranked[1]?.share).toBeCloseTo(0.02 / 0.031);
    expect(ranked[4]?.share).toBe(0);
  });

  it('calls nothing alike when no region adds likeness', () => {
    const ranked = rankRegions(
      EXPLANATION.regions.map((region) => ({ ...region, contribution: -Math.abs(region.contribution) })),
    );
    expect(ranked.every((region) => region.share === 0)).toBe(true);
    expect(ranked.some((region) => region.strength === 'strong')).toBe(false);
  });
});

describe('heatLevels', () => {
  it('puts both faces on one scale: the largest positive drop of either is 1', () => {
    const you = heatLevels(EXPLANATION.regions, 'you');
    const celebrity = heatLevels(EXPLANATION.regions, 'celebrity');
    expect(celebrity.eyes).toBe(1);
    expect(you.eyes).toBeCloseTo(0.029 / 0.033);
    expect(you.jaw).toBe(0);
    expect(celebrity.brows).toBe(0);
  });
});

describe('svgPoints', () => {
  it('scales fractions of the chip to the drawing', () => {
    expect(svgPoints([[0, 0], [0.5, 0.25], [1, 1]])).toBe('0,0 50,25 100,100');
    expect(svgPoints([[0.123456, 0.5]], 10)).toBe('1.23,5');
  });
});
