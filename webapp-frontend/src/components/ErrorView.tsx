import type { ApiError } from '../api/client';
import type { ErrorCode } from '../api/contract';
import { AlertIcon, FaceIcon, RetryIcon, UploadIcon } from './Icons';

// Keyed by the server's own error codes (api/contract.ts): a code it no longer sends fails tsc.
const TITLES: Partial<Record<ErrorCode, string>> = {
  no_face: "We couldn't find a face",
  not_an_image: "That file isn't a photo we can read",
  unsupported_image: "That photo's format isn't supported",
  corrupt_image: 'That photo seems to be damaged',
  too_large: 'That photo is too big',
  empty_file: 'That file is empty',
};

const NO_FACE_TIPS = [
  'Use a photo where the face is clearly visible and looks towards the camera.',
  'Good, even light helps; avoid strong shadows or backlight.',
  'Take off sunglasses, and keep hair or hands away from the face.',
  'The face should not be tiny: crop or zoom in on group photos.',
];

export function errorTitle(error: ApiError): string {
  const title = error.code ? TITLES[error.code as ErrorCode] : undefined;
  if (title) return title;
  if (error.kind === 'network') return "Can't reach the server";
  if (error.kind === 'timeout') return 'That took too long';
  return 'Something went wrong';
}

/** Worth sending the same photo again: connection trouble or the server's own fault. */
export function isRetryable(error: ApiError): boolean {
  if (error.kind !== 'server') return true;
  return error.status >= 500 || error.status === 408 || error.status === 429;
}

interface ErrorViewProps {
  error: ApiError;
  photoUrl: string | null;
  onRetry: () => void;
  onReset: () => void;
}

export function ErrorView({ error, photoUrl, onRetry, onReset }: ErrorViewProps) {
  const noFace = error.code === 'no_face';
  const retryable = isRetryable(error);
  return (
    <section className="panel problem" aria-labelledby="problem-title">
      {photoUrl && (
        <img
          className="problem__photo"
          src={photoUrl}
          alt="What you sent"
          onError={(event) => {
            event.currentTarget.hidden = true;
          }}
        />
      )}
      <div className="problem__body" role="alert">
        <div className="problem__icon" aria-hidden="true">
          {noFace ? <FaceIcon width={28} height={28} /> : <AlertIcon width={28} height={28} />}
        </div>
        <h1 id="problem-title" className="problem__title" tabIndex={-1}>
          {errorTitle(error)}
        </h1>
        <p className="problem__message" data-testid="error-message">
          {error.message}
        </p>
      </div>
      {noFace && (
        <div className="tips">
          <h2 className="tips__title">Tips for a better match</h2>
          <ul className="tips__list">
            {NO_FACE_TIPS.map((tip) => (
              <li key={tip}>{tip}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="problem__actions">
        {retryable && (
          <button type="button" className="button button--primary" onClick={onRetry}>
            <RetryIcon /> Try again
          </button>
        )}
        <button
          type="button"
          className={`button ${retryable ? 'button--secondary' : 'button--primary'}`}
          onClick={onReset}
        >
          <UploadIcon /> Try another photo
        </button>
      </div>
    </section>
  );
}
