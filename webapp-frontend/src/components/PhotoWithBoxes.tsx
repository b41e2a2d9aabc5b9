import { useState, type CSSProperties } from 'react';
import type { Face, ImageSize } from '../api/contract';
import { boxToPercent } from '../lib/geometry';
import { ImageIcon } from './Icons';

interface PhotoWithBoxesProps {
  url: string;
  image: ImageSize;
  faces: Face[];
  selected: number;
  onSelect: (index: number) => void;
}

/**
 * The uploaded photo with a box on each face. Boxes are placed in percent of the server's image
 * size, so they follow the photo at any displayed size. Keyboard users switch faces with the tabs.
 */
export function PhotoWithBoxes({ url, image, faces, selected, onSelect }: PhotoWithBoxesProps) {
  const [failed, setFailed] = useState(false);
  const ratio = image.width > 0 && image.height > 0 ? image.width / image.height : 1;
  const several = faces.length > 1;
  const facesText = `${faces.length} ${faces.length === 1 ? 'face' : 'faces'} marked`;

  return (
    <div className="photo" style={{ '--ratio': ratio } as CSSProperties} data-testid="result-photo">
      {failed ? (
        <div className="photo__fallback">
          <ImageIcon width={28} height={28} />
          <span>This browser can&rsquo;t show this photo&rsquo;s format, but the matches are below.</span>
        </div>
      ) : (
        <img
          className="photo__img"
          src={url}
          alt={`Your photo, with ${facesText}`}
          onError={() => setFailed(true)}
        />
      )}
      {faces.map((face, index) => {
        const rect = boxToPercent(face.box, image);
        const style: CSSProperties = {
          left: `${rect.x}%`,
          top: `${rect.y}%`,
          width: `${rect.width}%`,
          height: `${rect.height}%`,
        };
        const className = `photo__box${index === selected ? ' photo__box--selected' : ''}`;
        const tag = several && <span className="photo__tag">{index + 1}</span>;
        return several ? (
          <button
            key={index}
            type="button"
            tabIndex={-1}
            className={className}
            style={style}
            aria-label={`Show matches for face ${index + 1}`}
            aria-pressed={index === selected}
            onClick={() => onSelect(index)}
          >
            {tag}
          </button>
        ) : (
          <span key={index} className={className} style={style} aria-hidden="true" />
        );
      })}
    </div>
  );
}
