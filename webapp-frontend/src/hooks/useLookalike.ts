import { useCallback, useEffect, useRef, useState } from 'react';
import {
  ApiError,
  NETWORK_MESSAGE,
  isBusy,
  requestMatch,
  type MatchOptions,
  type PendingMatch,
} from '../api/client';
import type { MatchResponse } from '../api/contract';
import { preparePhoto } from '../lib/downscale';
import { sizeProblem, typeProblem } from '../lib/files';

/** `retrying`: the server was busy (503); the photo is sent once more after its Retry-After. */
export type Stage = 'preparing' | 'uploading' | 'processing' | 'retrying';

export type View =
  | { kind: 'idle' }
  | { kind: 'busy'; stage: Stage; fraction: number | null }
  | { kind: 'result'; response: MatchResponse; options: MatchOptions }
  | { kind: 'error'; error: ApiError };

export interface Photo {
  blob: Blob;
  fileName: string;
  /** An object URL of `blob`, revoked when the photo is replaced. */
  url: string;
  resized: boolean;
}

export const DEFAULT_OPTIONS: MatchOptions = { topK: 5, gender: null };

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : new ApiError('network', NETWORK_MESSAGE);
}

/** The app's whole flow: check → shrink → upload → results or error; retry, reset, cancel. */
export function useLookalike() {
  const [view, setView] = useState<View>({ kind: 'idle' });
  const [photo, setPhoto] = useState<Photo | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [options, setOptions] = useState<MatchOptions>(DEFAULT_OPTIONS);
  const pending = useRef<PendingMatch | null>(null);
  const retryTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  // Each new action bumps this; answers to older requests are then ignored.
  const generation = useRef(0);

  const photoUrl = photo?.url;
  useEffect(() => {
    if (!photoUrl) return undefined;
    return () => URL.revokeObjectURL(photoUrl);
  }, [photoUrl]);

  useEffect(
    () => () => {
      pending.current?.abort();
      if (retryTimer.current !== null) clearTimeout(retryTimer.current);
    },
    [],
  );

  const stopPending = () => {
    generation.current += 1;
    pending.current?.abort();
    pending.current = null;
    if (retryTimer.current !== null) clearTimeout(retryTimer.current);
    retryTimer.current = null;
    return generation.current;
  };

  const send = useCallback((target: Photo, sent: MatchOptions) => {
    const id = stopPending();
    const attempt = (retried: boolean) => {
      setView({ kind: 'busy', stage: 'uploading', fraction: 0 });
      const request = requestMatch(target.blob, target.fileName, sent, (progress) => {
        if (id === generation.current) {
          setView({ kind: 'busy', stage: progress.phase, fraction: progress.fraction });
        }
      });
      pending.current = request;
      request.promise.then(
        (response) => {
          if (id === generation.current) setView({ kind: 'result', response, options: sent });
        },
        (error: unknown) => {
          if (id !== generation.current) return;
          const apiError = asApiError(error);
          if (!retried && isBusy(apiError)) {
            // The server is busy: say so, wait the delay it asked for, then try once more.
            setView({ kind: 'busy', stage: 'retrying', fraction: null });
            retryTimer.current = setTimeout(() => {
              retryTimer.current = null;
              if (id === generation.current) attempt(true);
            }, apiError.retryAfter * 1000);
            return;
          }
          setView(
            apiError.kind === 'aborted' ? { kind: 'idle' } : { kind: 'error', error: apiError },
          );
        },
      );
    };
    attempt(false);
  }, []);

  const submit = useCallback(
    async (file: File) => {
      const wrongType = typeProblem(file);
      if (wrongType) {
        setNotice(wrongType);
        return;
      }
      setNotice(null);
      const id = stopPending();
      // The original is shown while it is prepared; a shrunk copy replaces it when there is one.
      const original: Photo = {
        blob: file,
        fileName: file.name || 'photo',
        url: URL.createObjectURL(file),
        resized: false,
      };
      setPhoto(original);
      setView({ kind: 'busy', stage: 'preparing', fraction: null });
      const prepared = await preparePhoto(file);
      if (id !== generation.current) return;
      const tooBig = sizeProblem(prepared.blob.size);
      if (tooBig) {
        setNotice(tooBig);
        setPhoto(null);
        setView({ kind: 'idle' });
        return;
      }
      const next = prepared.resized
        ? { ...prepared, url: URL.createObjectURL(prepared.blob) }
        : { ...original, fileName: prepared.fileName };
      setPhoto(next);
      send(next, options);
    },
    [options, send],
  );

  /** Send the same photo again, with the current options (retry, or new top-k / gender). */
  const resend = useCallback(() => {
    if (photo) send(photo, options);
  }, [photo, options, send]);

  const reset = useCallback(() => {
    stopPending();
    setPhoto(null);
    setNotice(null);
    setView({ kind: 'idle' });
  }, []);

  return {
    view,
    photo,
    notice,
    options,
    setOptions,
    submit,
    resend,
    reset,
    cancel: reset,
    dismissNotice: () => setNotice(null),
  };
}
