import { useId } from 'react';
import type { Gender } from '../api/contract';
import type { MatchOptions } from '../api/client';

const TOP_K_CHOICES = Array.from({ length: 20 }, (_, index) => index + 1);

const GENDERS: { value: Gender | null; label: string }[] = [
  { value: null, label: 'Anyone' },
  { value: 'female', label: 'Women' },
  { value: 'male', label: 'Men' },
];

interface SearchOptionsProps {
  value: MatchOptions;
  onChange: (value: MatchOptions) => void;
  disabled?: boolean;
}

/** Matches per face (top_k, 1–20) and which celebrities to compare with (gender). */
export function SearchOptions({ value, onChange, disabled = false }: SearchOptionsProps) {
  const id = useId();
  return (
    <fieldset className="options" disabled={disabled}>
      <legend className="visually-hidden">Search options</legend>
      <div className="options__field">
        <label htmlFor={`${id}-top-k`} className="options__label">
          Matches per face
        </label>
        <select
          id={`${id}-top-k`}
          className="select"
          value={value.topK}
          onChange={(event) => onChange({ ...value, topK: Number(event.target.value) })}
        >
          {TOP_K_CHOICES.map((count) => (
            <option key={count} value={count}>
              {count}
            </option>
          ))}
        </select>
      </div>
      <div className="options__field">
        <span id={`${id}-gender`} className="options__label">
          Compare with
        </span>
        <div className="segmented" role="radiogroup" aria-labelledby={`${id}-gender`}>
          {GENDERS.map((choice) => (
            <label key={choice.label} className="segmented__choice">
              <input
                type="radio"
                name={`${id}-gender`}
                value={choice.value ?? 'any'}
                checked={value.gender === choice.value}
                onChange={() => onChange({ ...value, gender: choice.value })}
              />
              <span>{choice.label}</span>
            </label>
          ))}
        </div>
      </div>
    </fieldset>
  );
}
