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
  index: { photos: number; celebrities: number };
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
