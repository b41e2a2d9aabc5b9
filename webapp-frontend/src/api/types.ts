// Types of the backend's HTTP contract (docs/api.md at the repository root).

/** `[x, y, w, h]` in pixels of the decoded, EXIF-upright image. */
export type Box = [number, number, number, number];

export type Gender = 'female' | 'male';

export interface ImageSize {
  width: number;
  height: number;
}

export interface Match {
  celebrity_id: string;
  name: string;
  /** Raw cosine similarity, -1..1. */
  similarity: number;
  /** Calibrated look-alike score, 0..100. */
  score: number;
  photo_id: number;
  photo_url: string;
  age: number | null;
  photo_year: number | null;
  gender: Gender | null;
}

export interface Face {
  box: Box;
  confidence: number;
  matches: Match[];
}

export interface MatchResponse {
  image: ImageSize;
  faces: Face[];
  faces_total: number;
  timings_ms?: Record<string, number>;
}

export interface HealthResponse {
  status: string;
  version?: string;
  model?: string;
  model_title?: string;
  /** The weights' licence; the footer shows `summary` when commercial use is not allowed. */
  model_license?: { name: string; commercial_use: boolean; summary: string };
  detector?: string;
  /** `demo`: built from the small bundled gallery (absent from older servers). */
  index: { photos: number; celebrities: number; demo?: boolean };
}

export type RegionName = 'eyes' | 'brows' | 'nose' | 'mouth' | 'jaw';

/** A polygon as [x, y] points in fractions (0..1) of a chip's side. */
export type Polygon = [number, number][];

export interface RegionExplanation {
  region: RegionName;
  label: string;
  /** Mean drop of the cosine similarity when this region is hidden (positive: alike). */
  contribution: number;
  /** The drop when it is hidden on the user's face only. */
  you: number;
  /** The drop when it is hidden on the celebrity's face only. */
  celebrity: number;
  outline: Polygon[];
}

/** POST /api/explain: why a match (docs/api.md). */
export interface ExplainResponse {
  method: string;
  photo_id: number;
  similarity: number;
  summary: string;
  /** Most alike first. */
  regions: RegionExplanation[];
  chips: { size: number; you: string; celebrity: string };
  timings_ms?: Record<string, number>;
}

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export interface MatchOptions {
  /** Matches per face, 1..20. */
  topK: number;
  /** `null` means any gender. */
  gender: Gender | null;
}
