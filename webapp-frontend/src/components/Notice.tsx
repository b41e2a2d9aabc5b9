import { AlertIcon, CloseIcon } from './Icons';

/** A problem found before upload (wrong file type, too big), shown above whatever is on screen. */
export function Notice({ message, onDismiss }: { message: string; onDismiss: () => void }) {
  return (
    <div className="notice" role="alert" data-testid="notice">
      <AlertIcon className="notice__icon" />
      <p className="notice__text">{message}</p>
      <button type="button" className="icon-button" aria-label="Dismiss message" onClick={onDismiss}>
        <CloseIcon width={18} height={18} />
      </button>
    </div>
  );
}
