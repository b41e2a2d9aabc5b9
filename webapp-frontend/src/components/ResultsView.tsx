import { useId, useState } from 'react';
import type { MatchResponse } from '../api/contract';
import type { MatchOptions } from '../api/client';
import { useFaceCrops } from '../hooks/useFaceCrops';
import type { Photo } from '../hooks/useLookalike';
import { plural } from '../lib/format';
import { FaceTabs, faceTabId } from './FaceTabs';
import { RetryIcon, UploadIcon } from './Icons';
import { MatchCard } from './MatchCard';
import { PhotoWithBoxes } from './PhotoWithBoxes';
import { SearchOptions } from './SearchOptions';

interface ResultsViewProps {
  response: MatchResponse;
  photo: Photo;
  appliedOptions: MatchOptions;
  options: MatchOptions;
  onOptionsChange: (options: MatchOptions) => void;
  onSearchAgain: () => void;
  onReset: () => void;
}

function sameOptions(a: MatchOptions, b: MatchOptions): boolean {
  return a.topK === b.topK && a.gender === b.gender;
}

export function ResultsView(props: ResultsViewProps) {
  const { response, photo, appliedOptions, options, onOptionsChange, onSearchAgain, onReset } = props;
  const [selected, setSelected] = useState(0);
  const crops = useFaceCrops(photo.blob, response);
  const idPrefix = useId();
  const panelId = `${idPrefix}-matches`;
  const faces = response.faces;
  const several = faces.length > 1;
  const face = faces[selected] ?? faces[0];
  const faceAlt = several ? `Your face (face ${selected + 1})` : 'Your face';

  return (
    <section className="results" aria-labelledby="results-title" data-testid="results">
      <div className="results__aside">
        <h1 id="results-title" className="results__title" tabIndex={-1}>
          Your look-alikes
        </h1>
        <p className="results__summary">
          {faces.length === 0 && 'No face was found in this photo.'}
          {faces.length === 1 && 'We found one face in your photo.'}
          {several && `We found ${plural(faces.length, 'face')}. Choose one to see its matches.`}
          {response.faces_total > faces.length &&
            ` Showing the ${faces.length} largest of ${response.faces_total}.`}
        </p>
        <PhotoWithBoxes
          url={photo.url}
          image={response.image}
          faces={faces}
          selected={selected}
          onSelect={setSelected}
        />
        {several && (
          <FaceTabs
            faces={faces}
            crops={crops}
            selected={selected}
            onSelect={setSelected}
            idPrefix={idPrefix}
            panelId={panelId}
          />
        )}
      </div>

      {/* A tab panel (several faces) takes focus, as WAI-ARIA's tabs pattern says. */}
      <div
        className="results__matches"
        id={panelId}
        role={several ? 'tabpanel' : undefined}
        // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex
        tabIndex={several ? 0 : undefined}
        aria-labelledby={several ? faceTabId(idPrefix, selected) : undefined}
      >
        <h2 id="matches-title" className="results__matches-title">
          {several ? `Matches for face ${selected + 1}` : 'Closest matches'}
        </h2>
        {face && face.matches.length > 0 ? (
          <ol className="match-list">
            {face.matches.map((match, index) => (
              <MatchCard
                key={`${match.celebrity_id}-${match.photo_id}`}
                match={match}
                rank={index + 1}
                faceCrop={crops[selected] ?? null}
                faceAlt={faceAlt}
                source={{
                  photo: photo.blob,
                  fileName: photo.fileName,
                  box: face.box,
                  image: response.image,
                }}
              />
            ))}
          </ol>
        ) : (
          <p className="results__empty">
            {face
              ? 'No celebrity matched with these settings. Try “Compare with: Anyone”.'
              : 'Try another photo with a clear, front-facing face.'}
          </p>
        )}
      </div>

      <div className="results__controls">
        <SearchOptions value={options} onChange={onOptionsChange} />
        <div className="results__buttons">
          {!sameOptions(options, appliedOptions) && (
            <button type="button" className="button button--primary" onClick={onSearchAgain}>
              <RetryIcon /> Update matches
            </button>
          )}
          <button type="button" className="button button--secondary" onClick={onReset}>
            <UploadIcon /> Try another photo
          </button>
        </div>
      </div>
    </section>
  );
}
