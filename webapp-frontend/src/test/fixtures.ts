// Responses typed by the contract (src/api/contract.ts, generated from the server's), and a
// scriptable stand-in for XMLHttpRequest.
import type { ExplainResponse, HealthResponse, Match, MatchResponse } from '../api/contract';

export function match(overrides: Partial<Match> = {}): Match {
  return {
    celebrity_id: 'george-w-bush',
    name: 'George W Bush',
    similarity: 0.612,
    score: 93.4,
    photo_id: 1234,
    photo_url: '/api/photos/1234',
    age: 56,
    photo_year: 2003,
    gender: 'male',
    ...overrides,
  };
}

/** The contract's own example: one face. */
export const ONE_FACE: MatchResponse = {
  image: { width: 1024, height: 768 },
  faces: [
    {
      box: [412, 130, 180, 224],
      confidence: 0.998,
      matches: [
        match(),
        match({
          celebrity_id: 'meryl-streep',
          name: 'Meryl Streep',
          similarity: 0.501,
          score: 71.6,
          photo_id: 77,
          photo_url: '/api/photos/77',
          age: null,
          photo_year: null,
          gender: 'female',
        }),
      ],
    },
  ],
  faces_total: 1,
  timings_ms: {
    decode: 8.1,
    detect: 61.0,
    align: 1.2,
    embed: 9.4,
    search: 0.6,
    total: 81.0,
    request: 83.2,
  },
};

/** A group photo: two faces, each with its own matches. */
export const TWO_FACES: MatchResponse = {
  image: { width: 2000, height: 1000 },
  faces: [
    {
      box: [1200, 200, 300, 300],
      confidence: 0.99,
      matches: [match({ name: 'Face One Match', celebrity_id: 'one', score: 88.2 })],
    },
    {
      box: [400, 250, 200, 200],
      confidence: 0.97,
      matches: [
        match({ name: 'Face Two Match', celebrity_id: 'two', score: 64.5, photo_id: 2 }),
        match({ name: 'Face Two Runner-up', celebrity_id: 'three', score: 51, photo_id: 3 }),
      ],
    },
  ],
  faces_total: 2,
  timings_ms: { ...ONE_FACE.timings_ms, total: 95.0, request: 97.1 },
};

export const HEALTH: HealthResponse = {
  status: 'ok',
  version: '0.1.0',
  model: 'sface',
  model_title: 'SFace (OpenCV zoo, 2021; int8 block-quantised)',
  model_license: { name: 'Apache-2.0', commercial_use: true, summary: 'Free to use, also commercially.' },
  detector: 'yunet',
  index: { photos: 312, celebrities: 104, demo: false },
  serving: null,
};

export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

type Listener = (() => void) | null;

/** Replaces XMLHttpRequest: records each request; the test answers it with respond() or fail(). */
export class FakeXHR {
  static requests: FakeXHR[] = [];
  /** Called (asynchronously) for every request sent; by default requests wait for the test. */
  static onSend: (xhr: FakeXHR) => void = () => {};

  static reset(): void {
    FakeXHR.requests = [];
    FakeXHR.onSend = () => {};
  }

  static last(): FakeXHR {
    const xhr = FakeXHR.requests.at(-1);
    if (!xhr) throw new Error('no request was sent');
    return xhr;
  }

  method = '';
  url = '';
  body: FormData | null = null;
  headers: Record<string, string> = {};
  status = 0;
  responseText = '';
  responseHeaders: Record<string, string> = {};
  responseType = '';
  timeout = 0;
  aborted = false;
  upload: { onprogress: ((event: ProgressEvent) => void) | null; onload: Listener } = {
    onprogress: null,
    onload: null,
  };
  onload: Listener = null;
  onerror: Listener = null;
  ontimeout: Listener = null;
  onabort: Listener = null;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  send(body: FormData): void {
    this.body = body;
    FakeXHR.requests.push(this);
    setTimeout(() => FakeXHR.onSend(this), 0);
  }

  abort(): void {
    this.aborted = true;
    this.onabort?.();
  }

  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total } as ProgressEvent);
  }

  /** Finish the upload, then answer with `status`, a JSON (or raw string) body and headers. */
  respond(status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.progress(100, 100);
    this.upload.onload?.();
    this.status = status;
    this.responseHeaders = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.onload?.();
  }

  /** A network failure (the browser's onerror, status 0). */
  fail(): void {
    this.onerror?.();
  }

  getResponseHeader(name: string): string | null {
    return this.responseHeaders[name.toLowerCase()] ?? null;
  }

  field(name: string): FormDataEntryValue | null {
    return this.body?.get(name) ?? null;
  }
}

const square = (x: number, y: number, side: number): [number, number][] => [
  [x, y],
  [x + side, y],
  [x + side, y + side],
  [x, y + side],
];

/** POST /api/explain's answer for ONE_FACE's best match: eyes and nose most alike. */
export const EXPLANATION: ExplainResponse = {
  method: 'occlusion',
  photo_id: 1234,
  similarity: 0.604,
  summary: 'Eyes and nose look most alike.',
  regions: [
    { region: 'eyes', label: 'Eyes', contribution: 0.031, you: 0.029, celebrity: 0.033,
      outline: [square(0.2, 0.25, 0.15), square(0.6, 0.25, 0.15)] },
    { region: 'nose', label: 'Nose', contribution: 0.02, you: 0.018, celebrity: 0.022,
      outline: [square(0.42, 0.4, 0.16)] },
    { region: 'mouth', label: 'Mouth', contribution: 0.008, you: 0.01, celebrity: 0.006,
      outline: [square(0.35, 0.68, 0.3)] },
    { region: 'brows', label: 'Eyebrows', contribution: 0.001, you: 0.002, celebrity: 0.0,
      outline: [square(0.2, 0.15, 0.15), square(0.6, 0.15, 0.15)] },
    { region: 'jaw', label: 'Jaw and face shape', contribution: -0.012, you: -0.01, celebrity: -0.014,
      outline: [square(0.1, 0.8, 0.8)] },
  ],
  chips: { size: 150, you: 'data:image/jpeg;base64,WU9V', celebrity: 'data:image/jpeg;base64,Q0VMRUI=' },
  timings_ms: { detect_align: 120, embed: 40, total: 161, request: 170 },
};
