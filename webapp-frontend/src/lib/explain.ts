// Presentation of POST /api/explain: how strong each region is, in words and as a heat level.
import type { Polygon, RegionExplanation } from '../api/contract';

/** Below this (cosine units) a region is "about neutral": the server's summary uses the same. */
export const NOTABLE = 0.005;

export type Strength = 'strong' | 'moderate' | 'slight' | 'neutral' | 'differs';

export const STRENGTH_TEXT: Record<Strength, string> = {
  strong: 'very alike',
  moderate: 'alike',
  slight: 'a little alike',
  neutral: 'no clear effect',
  differs: 'differs',
};

export interface RankedRegion extends RegionExplanation {
  /** Contribution relative to the strongest one, 0..1 (0 when it does not add likeness). */
  share: number;
  strength: Strength;
}

function strengthOf(contribution: number, share: number): Strength {
  if (contribution <= -NOTABLE) return 'differs';
  if (contribution < NOTABLE) return 'neutral';
  if (share >= 0.66) return 'strong';
  if (share >= 0.33) return 'moderate';
  return 'slight';
}

/** Regions most alike first, each with its share of the strongest and a word for it. */
export function rankRegions(regions: RegionExplanation[]): RankedRegion[] {
  const sorted = [...regions].sort((a, b) => b.contribution - a.contribution);
  const top = Math.max(0, ...sorted.map((region) => region.contribution));
  return sorted.map((region) => {
    const share = top > 0 ? Math.max(0, region.contribution) / top : 0;
    return { ...region, share, strength: strengthOf(region.contribution, share) };
  });
}

/**
 * Heat (0..1) of each region on one face: that face's own drop relative to the largest positive
 * drop over both faces, so the two overlays share one scale.
 */
export function heatLevels(
  regions: RegionExplanation[],
  side: 'you' | 'celebrity',
): Record<string, number> {
  const top = Math.max(0, ...regions.flatMap((region) => [region.you, region.celebrity]));
  const levels: Record<string, number> = {};
  for (const region of regions) {
    levels[region.region] = top > 0 ? Math.max(0, region[side]) / top : 0;
  }
  return levels;
}

/** An SVG `points` attribute for a polygon on a chip drawn `size` units wide. */
export function svgPoints(polygon: Polygon, size = 100): string {
  return polygon.map(([x, y]) => `${+(x * size).toFixed(2)},${+(y * size).toFixed(2)}`).join(' ');
}
