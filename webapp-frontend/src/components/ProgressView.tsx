import type { Stage } from '../hooks/useLookalike';

const STAGES: { stage: Stage; label: string }[] = [
  { stage: 'preparing', label: 'Preparing your photo' },
  { stage: 'uploading', label: 'Uploading' },
  { stage: 'processing', label: 'Finding faces and comparing' },
];
// A 503 from a busy server: the photo is sent again once, after the delay the server asked for.
const RETRYING_LABEL = 'The server is busy, retrying in a moment';

interface ProgressViewProps {
  stage: Stage;
  fraction: number | null;
  photoUrl: string | null;
  onCancel: () => void;
}

/** A staged indicator: preparing → uploading (with a percentage) → finding faces. */
export function ProgressView({ stage, fraction, photoUrl, onCancel }: ProgressViewProps) {
  const step = stage === 'retrying' ? 'uploading' : stage; // it will be sent again
  const current = STAGES.findIndex((item) => item.stage === step);
  const percent = stage === 'uploading' && fraction !== null ? Math.round(fraction * 100) : null;
  const label = stage === 'retrying' ? RETRYING_LABEL : (STAGES[current]?.label ?? 'Working');

  return (
    <section className="panel progress" aria-labelledby="progress-title" aria-busy="true">
      <div className="progress__photo">
        {photoUrl ? (
          <img src={photoUrl} alt="Your photo, being analysed" />
        ) : (
          <div className="progress__placeholder" aria-hidden="true" />
        )}
        <div className="progress__scan" aria-hidden="true" />
      </div>
      <div className="progress__body">
        <h1 id="progress-title" className="progress__title">
          Looking for your look-alikes
        </h1>
        <p className="progress__status" role="status">
          {label}…
        </p>
        <div
          className={`progress__bar${percent === null ? ' progress__bar--indeterminate' : ''}`}
          role="progressbar"
          aria-label={label}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent ?? undefined}
        >
          <div className="progress__fill" style={{ width: percent === null ? undefined : `${percent}%` }} />
        </div>
        <ol className="steps">
          {STAGES.map((item, index) => (
            <li
              key={item.stage}
              className={`steps__item${index < current ? ' steps__item--done' : ''}${index === current ? ' steps__item--current' : ''}`}
              aria-current={index === current ? 'step' : undefined}
            >
              {item.label}
              {index === current && percent !== null ? ` (${percent}%)` : ''}
            </li>
          ))}
        </ol>
        <button type="button" className="button button--ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </section>
  );
}
