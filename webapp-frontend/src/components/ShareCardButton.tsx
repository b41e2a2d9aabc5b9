import { useState } from 'react';
import type { Box, ImageSize, Match } from '../api/contract';
import { cardFileName, canShareFiles, makeCard, shareOrDownload } from '../lib/card';
import { ShareIcon } from './Icons';

interface ShareCardButtonProps {
  match: Match;
  photo: Blob;
  box: Box;
  image: ImageSize;
}

/** Makes the result card in the browser, then opens the share sheet or downloads the PNG. */
export function ShareCardButton({ match, photo, box, image }: ShareCardButtonProps) {
  const [state, setState] = useState<'idle' | 'making' | 'done' | 'failed'>('idle');
  const [delivered, setDelivered] = useState('');
  const share = canShareFiles();
  const label = share ? 'Share card' : 'Download card';

  const make = async () => {
    setState('making');
    try {
      const blob = await makeCard(photo, box, image, match);
      const how = await shareOrDownload(blob, cardFileName(match), `I look like ${match.name}`);
      setDelivered(
        how === 'downloaded' ? 'Card downloaded.' : how === 'shared' ? 'Card shared.' : '',
      );
      setState('done');
    } catch {
      setState('failed');
    }
  };

  return (
    <>
      <button
        type="button"
        className="button button--secondary button--small"
        onClick={() => void make()}
        disabled={state === 'making'}
        aria-label={`${label}: you and ${match.name}`}
        data-testid="share-card"
      >
        <ShareIcon width={18} height={18} /> {state === 'making' ? 'Making card…' : label}
      </button>
      <span className="visually-hidden" role="status">
        {state === 'done' ? delivered : ''}
      </span>
      {state === 'failed' && (
        <p className="match__problem" role="alert">
          The card could not be made in this browser. Try again, or take a screenshot instead.
        </p>
      )}
    </>
  );
}
