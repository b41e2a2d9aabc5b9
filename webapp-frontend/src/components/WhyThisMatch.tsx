import { useEffect, useId, useRef, useState } from 'react';
import { ApiError, requestExplain } from '../api/client';
import type { Box, ExplainResponse, Match } from '../api/contract';
import { STRENGTH_TEXT, heatLevels, rankRegions, svgPoints } from '../lib/explain';
import { InfoIcon, RetryIcon } from './Icons';

interface WhyThisMatchProps {
  match: Match;
  photo: Blob;
  fileName: string;
  box: Box;
}

/** Every region is faintly tinted so its outline shows; the heat adds to it. */
export const BASE_TINT = 0.06;

type State =
  | { kind: 'closed' }
  | { kind: 'loading' }
  | { kind: 'error'; message: string }
  | { kind: 'ready'; explanation: ExplainResponse };

/** One aligned face (as the model sees it) with its regions as a heat overlay. */
export function ChipWithHeat({
  src,
  alt,
  caption,
  explanation,
  side,
  heat,
}: {
  src: string;
  alt: string;
  caption: string;
  explanation: ExplainResponse;
  side: 'you' | 'celebrity';
  heat: boolean;
}) {
  const levels = heatLevels(explanation.regions, side);
  return (
    <figure className="why__chip">
      <div className="why__chip-frame">
        <img src={src} alt={alt} width={explanation.chips.size} height={explanation.chips.size} />
        {heat && (
          <svg
            className="why__heat"
            viewBox="0 0 100 100"
            preserveAspectRatio="none"
            aria-hidden="true"
            data-testid={`heat-${side}`}
          >
            {explanation.regions.map((region) =>
              region.outline.map((polygon, index) => (
                <polygon
                  key={`${region.region}-${index}`}
                  data-region={region.region}
                  points={svgPoints(polygon)}
                  fill="#ff2e6e"
                  fillOpacity={(BASE_TINT + 0.55 * (levels[region.region] ?? 0)).toFixed(3)}
                  stroke="#ffffff"
                  strokeOpacity={0.55}
                  strokeWidth={0.6}
                />
              )),
            )}
          </svg>
        )}
      </div>
      <figcaption>{caption}</figcaption>
    </figure>
  );
}

export function ExplanationView({
  explanation,
  name,
}: {
  explanation: ExplainResponse;
  name: string;
}) {
  const [heat, setHeat] = useState(true);
  const heatId = useId();
  const ranked = rankRegions(explanation.regions);
  return (
    <div className="why__body" data-testid="explanation">
      <p className="why__summary" data-testid="explanation-summary">
        {explanation.summary}
      </p>
      <ol className="why__regions" aria-label="Parts of the face, most alike first">
        {ranked.map((region) => (
          <li key={region.region} className="why__region" data-testid="explanation-region">
            <span className="why__region-name">{region.label}</span>
            <span className="why__bar" aria-hidden="true">
              <span className="why__bar-fill" style={{ width: `${Math.round(region.share * 100)}%` }} />
            </span>
            <span className={`why__strength why__strength--${region.strength}`}>
              {STRENGTH_TEXT[region.strength]}
            </span>
          </li>
        ))}
      </ol>
      <div className="why__chips">
        <ChipWithHeat
          src={explanation.chips.you}
          alt="Your face as the model sees it"
          caption="You"
          explanation={explanation}
          side="you"
          heat={heat}
        />
        <ChipWithHeat
          src={explanation.chips.celebrity}
          alt={`${name}'s face as the model sees it`}
          caption={name}
          explanation={explanation}
          side="celebrity"
          heat={heat}
        />
      </div>
      <label className="why__toggle" htmlFor={heatId}>
        <input
          id={heatId}
          type="checkbox"
          checked={heat}
          onChange={(event) => setHeat(event.target.checked)}
        />
        Show the heat map (stronger colour: more alike)
      </label>
      <p className="why__note">
        <InfoIcon width={16} height={16} /> An approximation: we hide each part of both faces in
        turn and measure how much the model&rsquo;s similarity drops. The model looks at the whole
        face, so parts also work together.
      </p>
    </div>
  );
}

/** "Why this match?": fetches the per-region explanation on demand and shows it in place. */
export function WhyThisMatch({ match, photo, fileName, box }: WhyThisMatchProps) {
  const [state, setState] = useState<State>({ kind: 'closed' });
  const controller = useRef<AbortController | null>(null);
  const panelId = useId();

  useEffect(() => () => controller.current?.abort(), []);

  const load = async () => {
    controller.current?.abort();
    const current = new AbortController();
    controller.current = current;
    setState({ kind: 'loading' });
    try {
      const explanation = await requestExplain(photo, fileName, match.photo_id, box, current.signal);
      if (!current.signal.aborted) setState({ kind: 'ready', explanation });
    } catch (error) {
      if (current.signal.aborted) return;
      const message =
        error instanceof ApiError ? error.message : 'The explanation could not be loaded.';
      setState({ kind: 'error', message });
    }
  };

  const open = state.kind !== 'closed';
  const toggle = () => {
    if (open) {
      controller.current?.abort();
      setState({ kind: 'closed' });
    } else {
      void load();
    }
  };

  return (
    <div className="why">
      <button
        type="button"
        className="button button--ghost button--small"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={toggle}
        data-testid="why-button"
      >
        <InfoIcon width={18} height={18} /> {open ? 'Hide why' : 'Why this match?'}
      </button>
      <div id={panelId} className="why__panel" hidden={!open}>
        {open && (
          <h4 className="why__title">
            Why you look like {match.name}
          </h4>
        )}
        {state.kind === 'loading' && (
          <p className="why__status" role="status">
            Comparing the parts of both faces…
          </p>
        )}
        {state.kind === 'error' && (
          <div className="why__error" role="alert">
            <p>{state.message}</p>
            <button
              type="button"
              className="button button--secondary button--small"
              onClick={() => void load()}
            >
              <RetryIcon width={18} height={18} /> Try again
            </button>
          </div>
        )}
        {state.kind === 'ready' && (
          <ExplanationView explanation={state.explanation} name={match.name} />
        )}
      </div>
    </div>
  );
}
