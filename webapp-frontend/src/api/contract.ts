// Generated from webapp-backend/lookalike_web/contract.py: do not edit. Regenerate with
// .venv/bin/python -m lookalike_web.codegen (it writes docs/openapi.json too).

/** Most bytes of a photo sent to the server in one upload. */
export const MAX_UPLOAD_BYTES = 15728640;

/** Every `error.code` the API answers with, and its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  missing_image: 400,
  empty_file: 400,
  bad_parameter: 400,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  not_an_image: 415,
  unsupported_image: 415,
  no_face: 422,
  corrupt_image: 422,
  cannot_explain: 422,
  internal_error: 500,
  busy: 503,
} as const satisfies Record<ErrorCode, number>;

// The JSON of every response: the schemas of docs/openapi.json (components.schemas).

/** Every `error.code` the API answers with (`ERROR_STATUS`: its HTTP status). */
export type ErrorCode =
  | 'bad_request'
  | 'missing_image'
  | 'empty_file'
  | 'bad_parameter'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'not_an_image'
  | 'unsupported_image'
  | 'no_face'
  | 'corrupt_image'
  | 'cannot_explain'
  | 'internal_error'
  | 'busy';

/** The body of every error response, whatever its status. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    /** Plain words for a person. */
    message: string;
  };
}

/** `[x, y, w, h]` in pixels of the decoded, EXIF-upright image. */
export type Box = [number, number, number, number];

export type Gender = 'female' | 'male';

/** The decoded image's size after EXIF rotation, in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** One celebrity (their best-matching photo) for one face. */
export interface Match {
  celebrity_id: string;
  name: string;
  /** Raw cosine similarity, -1..1. */
  similarity: number;
  /** Calibrated look-alike score, 0..100. */
  score: number;
  photo_id: number;
  photo_url: string;
  /** The celebrity's age in that photo; null when unknown. */
  age: number | null;
  photo_year: number | null;
  gender: Gender | null;
}

export interface Face {
  box: Box;
  confidence: number;
  /** One per celebrity, best `score` first. */
  matches: Match[];
}

/** Milliseconds per stage (`queue`: waiting for the models), `request`: the whole handler. */
export interface MatchTimings {
  decode: number;
  queue?: number;
  detect: number;
  align: number;
  embed: number;
  search: number;
  total: number;
  request: number;
}

/** POST /api/match: the faces found (largest first, at most 20) and their look-alikes. */
export interface MatchResponse {
  image: ImageSize;
  faces: Face[];
  /** Every face found, matched or not. */
  faces_total: number;
  timings_ms: MatchTimings;
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

/** Milliseconds per stage. */
export interface ExplainTimings {
  detect_align: number;
  embed: number;
  total: number;
  request: number;
}

/** POST /api/explain: which parts of the face carry the similarity of one match. */
export interface ExplainResponse {
  method: 'occlusion';
  photo_id: number;
  similarity: number;
  summary: string;
  /** Most alike first. */
  regions: RegionExplanation[];
  /** The two aligned faces, `size` px square, as JPEG data URLs. */
  chips: {
    size: number;
    you: string;
    celebrity: string;
  };
  timings_ms: ExplainTimings;
}

/** The weights' licence; the page shows `summary` when commercial use is not allowed. */
export interface ModelLicense {
  name: string;
  commercial_use: boolean;
  summary: string;
}

/** Batching across requests, for the worker process that answered. */
export interface ServingStats {
  queued: number;
  queue_size: number;
  max_batch: number;
  max_wait_ms: number;
  deadline_s: number;
  model_threads: number;
  batches: number;
  photos: number;
  mean_batch: number;
  largest_batch: number;
  refused: {
    queue_full: number;
    deadline: number;
  };
}

/** GET /api/health: liveness and what is loaded. */
export interface HealthResponse {
  status: 'ok';
  version: string;
  model: string | null;
  model_title: string | null;
  model_license: ModelLicense;
  detector: string;
  index: {
    photos: number;
    celebrities: number;
    /** Built from the small bundled gallery (data/sample). */
    demo: boolean;
  };
  /** Null when batching is off. */
  serving: ServingStats | null;
}

export interface CelebrityPhoto {
  photo_id: number;
  photo_url: string;
  age: number | null;
  photo_year: number | null;
}

/** GET /api/celebrities/{celebrity_id}: one celebrity and every indexed photo of them. */
export interface CelebrityResponse {
  celebrity_id: string;
  name: string;
  gender: Gender | null;
  photos: CelebrityPhoto[];
}
