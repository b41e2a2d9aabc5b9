import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeXHR, HEALTH, ONE_FACE, errorBody } from '../test/fixtures';
import {
  ApiError,
  NETWORK_MESSAGE,
  fetchHealth,
  parseErrorBody,
  requestMatch,
  type UploadProgress,
} from './client';

beforeEach(() => {
  FakeXHR.reset();
  vi.stubGlobal('XMLHttpRequest', FakeXHR);
});

const photo = new File(['jpeg bytes'], 'me.jpg', { type: 'image/jpeg' });

describe('requestMatch', () => {
  it('POSTs the photo, top_k and gender as multipart form fields to /api/match', async () => {
    const { promise } = requestMatch(photo, 'me.jpg', { topK: 7, gender: 'female' });
    const xhr = FakeXHR.last();
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/match');
    expect(xhr.field('image')).toBeInstanceOf(File);
    expect((xhr.field('image') as File).name).toBe('me.jpg');
    expect(xhr.field('top_k')).toBe('7');
    expect(xhr.field('gender')).toBe('female');
    xhr.respond(200, ONE_FACE);
    await expect(promise).resolves.toEqual(ONE_FACE);
  });

  it('leaves gender out for "any"', () => {
    requestMatch(photo, 'me.jpg', { topK: 5, gender: null });
    expect(FakeXHR.last().field('gender')).toBeNull();
    expect(FakeXHR.last().field('top_k')).toBe('5');
  });

  it('reports upload progress, then the processing phase', async () => {
    const seen: UploadProgress[] = [];
    const { promise } = requestMatch(photo, 'me.jpg', { topK: 5, gender: null }, (p) => seen.push(p));
    const xhr = FakeXHR.last();
    xhr.progress(25, 100);
    xhr.respond(200, ONE_FACE);
    await promise;
    expect(seen).toEqual([
      { phase: 'uploading', fraction: 0 },
      { phase: 'uploading', fraction: 0.25 },
      { phase: 'uploading', fraction: 1 },
      { phase: 'processing', fraction: null },
    ]);
  });

  it.each([
    [415, 'not_an_image', 'This file is not an image we can read.'],
    [422, 'no_face', 'No face found. Use a clear, front-facing, well-lit face.'],
    [413, 'too_large', 'The upload is over the 15 MB limit.'],
    [400, 'bad_parameter', 'top_k must be between 1 and 20.'],
  ])('rejects a %i with the API error code and message', async (status, code, message) => {
    const { promise } = requestMatch(photo, 'me.jpg', { topK: 5, gender: null });
    FakeXHR.last().respond(status, errorBody(code, message));
    const error = await promise.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ kind: 'server', status, code, message });
  });

  it('words an error without the API body (a proxy page) by its status', async () => {
    const { promise } = requestMatch(photo, 'me.jpg', { topK: 5, gender: null });
    FakeXHR.last().respond(502, '<html>Bad Gateway</html>');
    await expect(promise).rejects.toMatchObject({
      kind: 'server',
      status: 502,
      code: null,
      message: 'The server ran into a problem (error 502). Please try again in a moment.',
    });
  });

  it('rejects a network failure with a plain message', async () => {
    const { promise } = requestMatch(photo, 'me.jpg', { topK: 5, gender: null });
    FakeXHR.last().fail();
    await expect(promise).rejects.toMatchObject({ kind: 'network', message: NETWORK_MESSAGE });
  });

  it('rejects a 200 that is not the contract', async () => {
    const { promise } = requestMatch(photo, 'me.jpg', { topK: 5, gender: null });
    FakeXHR.last().respond(200, { hello: 'world' });
    await expect(promise).rejects.toMatchObject({ kind: 'bad_response' });
  });

  it('can be cancelled', async () => {
    const { promise, abort } = requestMatch(photo, 'me.jpg', { topK: 5, gender: null });
    abort();
    await expect(promise).rejects.toMatchObject({ kind: 'aborted' });
  });
});

describe('parseErrorBody', () => {
  it('reads {error: {code, message}} and nothing else', () => {
    expect(parseErrorBody(errorBody('no_face', 'No face.'))).toEqual({ code: 'no_face', message: 'No face.' });
    expect(parseErrorBody('{"error": "flat string"}')).toBeNull();
    expect(parseErrorBody('{"error": {"code": "x", "message": ""}}')).toBeNull();
    expect(parseErrorBody('not json')).toBeNull();
  });
});

describe('fetchHealth', () => {
  it('returns the index sizes', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(HEALTH)));
    vi.stubGlobal('fetch', fetchMock);
    await expect(fetchHealth()).resolves.toEqual(HEALTH);
    expect(fetchMock).toHaveBeenCalledWith('/api/health', expect.anything());
  });

  it('returns null when the server is down or answers something else', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
    await expect(fetchHealth()).resolves.toBeNull();
    vi.stubGlobal('fetch', vi.fn(async () => new Response('oops', { status: 500 })));
    await expect(fetchHealth()).resolves.toBeNull();
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"status": "ok"}')));
    await expect(fetchHealth()).resolves.toBeNull();
  });
});
