import { roundScore } from '../lib/format';

/** The calibrated 0–100 look-alike score, as a bar with the number beside it. */
export function ScoreBar({ score }: { score: number }) {
  const value = roundScore(score);
  const tier = value >= 80 ? 'high' : value >= 50 ? 'mid' : 'low';
  return (
    <div className={`score score--${tier}`}>
      <div
        className="score__track"
        role="meter"
        aria-label="Look-alike score"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={value}
        aria-valuetext={`${value} out of 100`}
      >
        <div className="score__fill" style={{ width: `${value}%` }} />
      </div>
      <span className="score__value" data-testid="match-score">
        <strong>{value}</strong> / 100
      </span>
    </div>
  );
}
