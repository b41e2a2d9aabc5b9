import { useState } from 'react';
import type { MatchOptions } from '../api/client';
import { CameraCapture } from './CameraCapture';
import { DropZone } from './DropZone';
import { LockIcon } from './Icons';
import { SearchOptions } from './SearchOptions';

interface UploadPanelProps {
  options: MatchOptions;
  onOptionsChange: (options: MatchOptions) => void;
  onFile: (file: File) => void;
  celebrities: number | null;
  /** The server runs the small bundled demo gallery. */
  demo?: boolean;
}

/** The idle screen: what to do, where the photo goes, and the ways to give one. */
export function UploadPanel(props: UploadPanelProps) {
  const { options, onOptionsChange, onFile, celebrities, demo = false } = props;
  const [camera, setCamera] = useState(false);
  const count = celebrities ? `${celebrities.toLocaleString('en-US')} celebrities` : 'celebrities';
  const gallery = demo ? `${count} (a small demo gallery)` : count;

  return (
    <section className="panel upload" aria-labelledby="upload-title">
      <div className="upload__intro">
        <h1 id="upload-title" className="upload__title" tabIndex={-1}>
          Which celebrity do you look like?
        </h1>
        <p className="upload__lead">
          Add a clear photo of a face and we&rsquo;ll find your closest look-alikes among {gallery}.
          Group photos work too: pick any face to see its matches.
        </p>
      </div>
      {camera ? (
        <CameraCapture onUse={onFile} onClose={() => setCamera(false)} />
      ) : (
        <DropZone onFile={onFile} onOpenCamera={() => setCamera(true)} />
      )}
      <SearchOptions value={options} onChange={onOptionsChange} />
      <p className="privacy">
        <LockIcon width={18} height={18} />
        <span>
          Your photo is processed in memory to find matches and is never stored &mdash; not on our
          server, not in your browser.
        </span>
      </p>
    </section>
  );
}
