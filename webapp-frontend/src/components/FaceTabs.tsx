import { useRef, type KeyboardEvent } from 'react';
import type { Face } from '../api/contract';

interface FaceTabsProps {
  faces: Face[];
  crops: (string | null)[];
  selected: number;
  onSelect: (index: number) => void;
  idPrefix: string;
  panelId: string;
}

export function faceTabId(prefix: string, index: number): string {
  return `${prefix}-face-${index}`;
}

/** One tab per face (WAI-ARIA tabs: arrow keys, Home and End move between faces). */
export function FaceTabs({ faces, crops, selected, onSelect, idPrefix, panelId }: FaceTabsProps) {
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);

  const move = (index: number) => {
    const next = (index + faces.length) % faces.length;
    onSelect(next);
    tabs.current[next]?.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const keys: Record<string, number> = {
      ArrowRight: selected + 1,
      ArrowDown: selected + 1,
      ArrowLeft: selected - 1,
      ArrowUp: selected - 1,
      Home: 0,
      End: faces.length - 1,
    };
    const target = keys[event.key];
    if (target === undefined) return;
    event.preventDefault();
    move(target);
  };

  return (
    // The tabs inside take focus (roving tabindex); the list only handles their arrow keys.
    // eslint-disable-next-line jsx-a11y/interactive-supports-focus
    <div className="face-tabs" role="tablist" aria-label="Faces in your photo" onKeyDown={onKeyDown}>
      {faces.map((face, index) => {
        const crop = crops[index];
        const best = face.matches[0];
        return (
          <button
            key={index}
            ref={(element) => {
              tabs.current[index] = element;
            }}
            type="button"
            role="tab"
            id={faceTabId(idPrefix, index)}
            aria-selected={index === selected}
            aria-controls={panelId}
            tabIndex={index === selected ? 0 : -1}
            className="face-tab"
            onClick={() => onSelect(index)}
          >
            {crop ? (
              <img className="face-tab__img" src={crop} alt="" />
            ) : (
              <span className="face-tab__img face-tab__img--empty" aria-hidden="true">
                {index + 1}
              </span>
            )}
            <span className="face-tab__text">
              <span className="face-tab__label">Face {index + 1}</span>
              {best && <span className="face-tab__best">{best.name}</span>}
            </span>
          </button>
        );
      })}
    </div>
  );
}
