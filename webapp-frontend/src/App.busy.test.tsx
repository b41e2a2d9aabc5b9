import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App';
import { ApiError, MAX_RETRY_AFTER_S, parseRetryAfter, requestMatch } from './api/client';
import { FakeXHR, HEALTH, ONE_FACE, errorBody } from './test/fixtures';

// What the server answers when its queue is full (docs/api.md): 503, Retry-After, JSON error.
const BUSY_MESSAGE = 'The server is busy right now. Please try again in a moment.';
const busy = (xhr: FakeXHR, seconds = '1') =>
  act(() => xhr.respond(503, errorBody('busy', BUSY_MESSAGE), { 'Retry-After': seconds }));

function setup() {
  vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify(HEALTH))));
  const user = userEvent.setup({ applyAccept: false, advanceTimers: vi.advanceTimersByTime });
  render(<App />);
  const upload = () =>
    user.upload(
      screen.getByLabelText('Photo to upload'),
      new File(['jpeg bytes'], 'me.jpg', { type: 'image/jpeg' }),
    );
  return { user, upload };
}

beforeEach(() => {
  FakeXHR.reset();
  vi.stubGlobal('XMLHttpRequest', FakeXHR);
  vi.useFakeTimers({ shouldAdvanceTime: true });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP dates, within 1..MAX_RETRY_AFTER_S', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter(' 0 ')).toBe(1);
    expect(parseRetryAfter('3600')).toBe(MAX_RETRY_AFTER_S);
    const now = Date.parse('2026-12-03T08:00:00Z');
    expect(parseRetryAfter('Thu, 03 Dec 2026 08:00:05 GMT', now)).toBe(5);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter('soon')).toBeNull();
  });

  it("puts a 503's Retry-After on the ApiError, and only a 503's", async () => {
    const busyMatch = requestMatch(new Blob(['x']), 'me.jpg', { topK: 5, gender: null });
    FakeXHR.last().respond(503, errorBody('busy', BUSY_MESSAGE), { 'Retry-After': '2' });
    const error = await busyMatch.promise.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({
      status: 503,
      code: 'busy',
      retryAfter: 2,
      message: BUSY_MESSAGE,
    });

    const other = requestMatch(new Blob(['x']), 'me.jpg', { topK: 5, gender: null });
    FakeXHR.last().respond(429, errorBody('slow_down', 'Too many.'), { 'Retry-After': '2' });
    await expect(other.promise).rejects.toMatchObject({ status: 429, retryAfter: null });
  });
});

describe('a busy server', () => {
  it('shows "busy, retrying", waits the Retry-After, then sends the photo once more', async () => {
    const { upload } = setup();
    await upload();
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(1));
    busy(FakeXHR.last(), '2');

    expect(await screen.findByRole('status')).toHaveTextContent(
      'The server is busy, retrying in a moment',
    );
    expect(screen.queryByRole('alert')).toBeNull(); // not an error yet
    act(() => vi.advanceTimersByTime(1500));
    expect(FakeXHR.requests).toHaveLength(1); // still waiting out the 2 s
    act(() => vi.advanceTimersByTime(600));
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(2));
    expect((FakeXHR.last().field('image') as File).name).toBe('me.jpg');

    act(() => FakeXHR.last().respond(200, ONE_FACE));
    expect(await screen.findAllByTestId('match-card')).toHaveLength(2);
  });

  it('retries only once: a second 503 is shown as the error', async () => {
    const { upload } = setup();
    await upload();
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(1));
    busy(FakeXHR.last());
    await screen.findByText('The server is busy, retrying in a moment…');
    act(() => vi.advanceTimersByTime(1100));
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(2));
    busy(FakeXHR.last());

    expect(await screen.findByText(BUSY_MESSAGE)).toBeInTheDocument();
    act(() => vi.advanceTimersByTime(5000));
    expect(FakeXHR.requests).toHaveLength(2);
  });

  it('does not retry after Cancel', async () => {
    const { user, upload } = setup();
    await upload();
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(1));
    busy(FakeXHR.last());
    await user.click(await screen.findByRole('button', { name: 'Cancel' }));
    act(() => vi.advanceTimersByTime(5000));
    expect(FakeXHR.requests).toHaveLength(1);
  });

  it('shows other 5xx errors at once, without retrying', async () => {
    const { upload } = setup();
    await upload();
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(1));
    act(() => FakeXHR.last().respond(500, errorBody('internal_error', 'Something went wrong.')));
    expect(await screen.findByText('Something went wrong.')).toBeInTheDocument();
    act(() => vi.advanceTimersByTime(5000));
    expect(FakeXHR.requests).toHaveLength(1);
  });
});
