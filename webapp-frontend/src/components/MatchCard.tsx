import type { Box, ImageSize, Match } from '../api/contract';
import { ageText, similarityText } from '../lib/format';
import { ScoreBar } from './ScoreBar';
import { ShareCardButton } from './ShareCardButton';
import { WhyThisMatch } from './WhyThisMatch';

/** The uploaded photo (in memory) and the face of it that was matched. */
export interface MatchSource {
  photo: Blob;
  fileName: string;
  box: Box;
  image: ImageSize;
}

interface MatchCardProps {
  match: Match;
  rank: number;
  /** The user's face crop (a data URL), or null while it is cut or where it cannot be. */
  faceCrop: string | null;
  /** Alt text of the user's face crop, e.g. "Your face (face 2)". */
  faceAlt: string;
  /** Where the card and the explanation take the user's face from (null: neither is offered). */
  source?: MatchSource | null;
}

/** One look-alike: their photo beside the user's face, name, score, age and raw similarity. */
export function MatchCard({ match, rank, faceCrop, faceAlt, source = null }: MatchCardProps) {
  const age = ageText(match);
  return (
    <li className={`match${rank === 1 ? ' match--best' : ''}`} data-testid="match-card">
      <div className="match__photos">
        <figure className="match__figure">
          <img
            className="match__img"
            src={match.photo_url}
            alt={`${match.name}${age ? `, ${age}` : ''}`}
            width={160}
            height={160}
          />
          <figcaption className="match__caption">Celebrity</figcaption>
        </figure>
        <figure className="match__figure">
          {faceCrop ? (
            <img
              className="match__img"
              src={faceCrop}
              alt={faceAlt}
              width={160}
              height={160}
            />
          ) : (
            <div className="match__img match__img--empty" aria-hidden="true" />
          )}
          <figcaption className="match__caption">You</figcaption>
        </figure>
      </div>
      <div className="match__body">
        <p className="match__rank">{rank === 1 ? 'Best match' : `#${rank}`}</p>
        <h3 className="match__name" data-testid="match-name">
          {match.name}
        </h3>
        <ScoreBar score={match.score} />
        {age && (
          <p className="match__age" data-testid="match-age">
            {age}
          </p>
        )}
        <p className="match__similarity">similarity {similarityText(match.similarity)}</p>
      </div>
      {source && (
        <div className="match__more">
          <div className="match__actions">
            <ShareCardButton
              match={match}
              photo={source.photo}
              box={source.box}
              image={source.image}
            />
          </div>
          <WhyThisMatch
            match={match}
            photo={source.photo}
            fileName={source.fileName}
            box={source.box}
          />
        </div>
      )}
    </li>
  );
}
