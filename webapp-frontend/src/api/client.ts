// Requests to the API. The responses' types come from contract.ts, generated from the server's
// own contract (webapp-backend/lookalike_web/contract.py; docs/api.md).
import type { Box, ExplainResponse, Gender, HealthResponse, MatchResponse } from './contract';

/** What the page asks POST /api/match for (its form fields `top_k` and `gender`). */
export interface MatchOptions {
  /** Matches per face, 1..20. */
  topK: number;
  /** `null` means any gender. */
  gender: Gender | null;
}

export const MATCH_URL = '/api/match';
export const EXPLAIN_URL = '/api/explain';
export const HEALTH_URL = '/api/health';
const MATCH_TIMEOUT_MS = 120_000;

export type ApiErrorKind = 'server' | 'network' | 'timeout' | 'aborted' | 'bad_response';

/** Any failure of a request, with a message that can be shown to a person as it is. */
export class ApiError extends Error {
  readonly kind: ApiErrorKind;
  readonly status: number;
  readonly code: string | null;
  /** Seconds the server asked us to wait before trying again (a 503's Retry-After), or null. */
  readonly retryAfter: number | null;

  constructor(
    kind: ApiErrorKind,
    message: string,
    status = 0,
    code: string | null = null,
    retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Longest Retry-After we honour before giving up and showing the error (seconds). */
export const MAX_RETRY_AFTER_S = 30;

/**
 * A Retry-After header as whole seconds (delay-seconds or an HTTP date), at least 1 and at most
 * MAX_RETRY_AFTER_S; null when absent or unreadable.
 */
export function parseRetryAfter(header: string | null, now = Date.now()): number | null {
  if (header === null || header.trim() === '') return null;
  const text = header.trim();
  let seconds = /^\d+$/.test(text) ? Number(text) : (Date.parse(text) - now) / 1000;
  if (!Number.isFinite(seconds)) return null;
  seconds = Math.ceil(seconds);
  return Math.min(Math.max(seconds, 1), MAX_RETRY_AFTER_S);
}

/** The server is busy (503 with Retry-After): worth one automatic retry after the delay. */
export function isBusy(error: ApiError): error is ApiError & { retryAfter: number } {
  return error.kind === 'server' && error.status === 503 && error.retryAfter !== null;
}

export const NETWORK_MESSAGE =
  "We couldn't reach the server. Check your internet connection and try again.";
export const TIMEOUT_MESSAGE = 'The server took too long to answer. Please try again.';
const BAD_RESPONSE_MESSAGE = 'The server sent an answer we could not read. Please try again.';

export type UploadPhase = 'uploading' | 'processing';

export interface UploadProgress {
  phase: UploadPhase;
  /** 0..1 while uploading when the size is known, otherwise null. */
  fraction: number | null;
}

export interface PendingMatch {
  promise: Promise<MatchResponse>;
  abort: () => void;
}

/**
 * The `{error: {code, message}}` body of an error response (the contract's ErrorBody), or null
 * when it has another shape. `code` stays a string: a proxy or a newer server may send others.
 */
export function parseErrorBody(text: string): { code: string; message: string } | null {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null || !('error' in body)) return null;
    const error = (body as { error: unknown }).error;
    if (typeof error !== 'object' || error === null) return null;
    const { code, message } = error as Record<string, unknown>;
    if (typeof message !== 'string' || message.trim() === '') return null;
    return { code: typeof code === 'string' ? code : 'unknown', message };
  } catch {
    return null;
  }
}

/** Plain words for an HTTP error whose body is not the API's JSON (a proxy's HTML page, say). */
export function fallbackMessage(status: number): string {
  if (status === 413) return 'That photo is too large for the server. Please try a smaller one.';
  if (status >= 500) {
    return `The server ran into a problem (error ${status}). Please try again in a moment.`;
  }
  return `The server could not handle this request (error ${status}).`;
}

export function errorFromResponse(
  status: number,
  text: string,
  retryAfter: number | null = null,
): ApiError {
  const body = parseErrorBody(text);
  if (body) return new ApiError('server', body.message, status, body.code, retryAfter);
  return new ApiError('server', fallbackMessage(status), status, null, retryAfter);
}

function isMatchResponse(value: unknown): value is MatchResponse {
  if (typeof value !== 'object' || value === null) return false;
  const { image, faces } = value as Record<string, unknown>;
  return (
    typeof image === 'object' &&
    image !== null &&
    typeof (image as Record<string, unknown>).width === 'number' &&
    typeof (image as Record<string, unknown>).height === 'number' &&
    Array.isArray(faces)
  );
}

export function buildMatchForm(photo: Blob, fileName: string, options: MatchOptions): FormData {
  const form = new FormData();
  form.append('image', photo, fileName);
  form.append('top_k', String(options.topK));
  if (options.gender) form.append('gender', options.gender);
  return form;
}

/**
 * POST the photo to /api/match with XMLHttpRequest, which (unlike fetch) reports upload progress.
 * The promise rejects with an ApiError only.
 */
export function requestMatch(
  photo: Blob,
  fileName: string,
  options: MatchOptions,
  onProgress: (progress: UploadProgress) => void = () => {},
): PendingMatch {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<MatchResponse>((resolve, reject) => {
    xhr.open('POST', MATCH_URL);
    xhr.responseType = 'text';
    xhr.timeout = MATCH_TIMEOUT_MS;
    xhr.setRequestHeader('Accept', 'application/json');

    xhr.upload.onprogress = (event) => {
      const fraction = event.lengthComputable && event.total > 0 ? event.loaded / event.total : null;
      onProgress({ phase: 'uploading', fraction });
    };
    xhr.upload.onload = () => onProgress({ phase: 'processing', fraction: null });

    xhr.onload = () => {
      const text = typeof xhr.responseText === 'string' ? xhr.responseText : '';
      if (xhr.status < 200 || xhr.status >= 300) {
        const retryAfter =
          xhr.status === 503 ? parseRetryAfter(xhr.getResponseHeader('Retry-After')) : null;
        reject(errorFromResponse(xhr.status, text, retryAfter));
        return;
      }
      try {
        const body: unknown = JSON.parse(text);
        if (isMatchResponse(body)) resolve(body);
        else reject(new ApiError('bad_response', BAD_RESPONSE_MESSAGE, xhr.status));
      } catch {
        reject(new ApiError('bad_response', BAD_RESPONSE_MESSAGE, xhr.status));
      }
    };
    xhr.onerror = () => reject(new ApiError('network', NETWORK_MESSAGE));
    xhr.ontimeout = () => reject(new ApiError('timeout', TIMEOUT_MESSAGE));
    xhr.onabort = () => reject(new ApiError('aborted', 'The upload was cancelled.'));

    onProgress({ phase: 'uploading', fraction: 0 });
    xhr.send(buildMatchForm(photo, fileName, options));
  });
  return { promise, abort: () => xhr.abort() };
}

/** GET /api/health; null when the server cannot tell (the footer then says nothing about it). */
export async function fetchHealth(signal?: AbortSignal): Promise<HealthResponse | null> {
  try {
    const response = await fetch(HEALTH_URL, { signal, headers: { Accept: 'application/json' } });
    if (!response.ok) return null;
    const body = (await response.json()) as Partial<HealthResponse>;
    const index = body.index;
    if (!index || typeof index.photos !== 'number' || typeof index.celebrities !== 'number') {
      return null;
    }
    return body as HealthResponse;
  } catch {
    return null;
  }
}

function isExplainResponse(value: unknown): value is ExplainResponse {
  if (typeof value !== 'object' || value === null) return false;
  const { regions, chips, summary } = value as Record<string, unknown>;
  return (
    Array.isArray(regions) &&
    typeof summary === 'string' &&
    typeof chips === 'object' &&
    chips !== null &&
    typeof (chips as Record<string, unknown>).you === 'string' &&
    typeof (chips as Record<string, unknown>).celebrity === 'string'
  );
}

/**
 * POST the same photo again to /api/explain for one match (the server keeps nothing between
 * requests). Rejects with an ApiError only.
 */
export async function requestExplain(
  photo: Blob,
  fileName: string,
  photoId: number,
  box: Box,
  signal?: AbortSignal,
): Promise<ExplainResponse> {
  const form = new FormData();
  form.append('image', photo, fileName);
  form.append('photo_id', String(photoId));
  form.append('box', box.join(','));
  let response: Response;
  try {
    response = await fetch(EXPLAIN_URL, {
      method: 'POST',
      body: form,
      signal,
      headers: { Accept: 'application/json' },
    });
  } catch (error) {
    if (signal?.aborted) throw new ApiError('aborted', 'The request was cancelled.');
    throw new ApiError('network', NETWORK_MESSAGE, 0, error instanceof Error ? error.name : null);
  }
  const text = await response.text().catch(() => '');
  if (!response.ok) throw errorFromResponse(response.status, text);
  try {
    const body: unknown = JSON.parse(text);
    if (isExplainResponse(body)) return body;
  } catch {
    // falls through to the error below
  }
  throw new ApiError('bad_response', BAD_RESPONSE_MESSAGE, response.status);
}
