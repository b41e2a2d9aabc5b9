import { useRef, useState, type DragEvent } from 'react';
import { firstFile } from '../hooks/useGlobalImageInput';
import { CameraIcon, ImageIcon, UploadIcon } from './Icons';

interface DropZoneProps {
  onFile: (file: File) => void;
  onOpenCamera: () => void;
}

/** Drop a photo here, pick one with the button, or switch to the camera. */
export function DropZone({ onFile, onOpenCamera }: DropZoneProps) {
  const input = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);

  const onDragOver = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    setDragging(true);
  };
  const onDragLeave = (event: DragEvent<HTMLDivElement>) => {
    if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
  };
  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    const file = firstFile(event.dataTransfer);
    if (file) onFile(file);
  };

  return (
    // A drop target for the mouse; keyboard and touch users have the "Choose a photo" button.
    // eslint-disable-next-line jsx-a11y/no-static-element-interactions
    <div
      className={`dropzone${dragging ? ' dropzone--active' : ''}`}
      onDragOver={onDragOver}
      onDragEnter={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
      data-testid="dropzone"
    >
      <div className="dropzone__art" aria-hidden="true">
        <ImageIcon width={30} height={30} />
      </div>
      <p className="dropzone__title">{dragging ? 'Drop it here' : 'Drag a photo here'}</p>
      <p className="dropzone__hint">
        or paste one with <kbd>Ctrl</kbd>+<kbd>V</kbd> · JPEG, PNG, WebP and more, up to 15 MB
      </p>
      <div className="dropzone__actions">
        <button type="button" className="button button--primary" onClick={() => input.current?.click()}>
          <UploadIcon /> Choose a photo
        </button>
        <button type="button" className="button button--secondary" onClick={onOpenCamera}>
          <CameraIcon /> Use your camera
        </button>
      </div>
      <input
        ref={input}
        className="visually-hidden"
        type="file"
        accept="image/*"
        aria-label="Photo to upload"
        data-testid="file-input"
        tabIndex={-1}
        onChange={(event) => {
          const file = event.target.files?.[0];
          event.target.value = ''; // choosing the same file again should work too
          if (file) onFile(file);
        }}
      />
    </div>
  );
}
