import type { HealthResponse } from '../api/types';
import { plural } from '../lib/format';
import { LockIcon } from './Icons';

export function gallerySizeText(health: HealthResponse | null | undefined): string {
  if (health === undefined) return 'Checking the gallery…';
  if (health === null) return 'Gallery size unavailable right now';
  const { photos, celebrities } = health.index;
  return `Gallery: ${plural(photos, 'photo')} of ${plural(celebrities, 'celebrity', 'celebrities')}`;
}

export function Footer({ health }: { health: HealthResponse | null | undefined }) {
  return (
    <footer className="footer">
      <div className="footer__inner">
        <p className="footer__gallery" data-testid="gallery-size">
          {gallerySizeText(health)}
        </p>
        <p className="footer__privacy">
          <LockIcon width={16} height={16} /> Photos are processed in memory and never stored.
        </p>
      </div>
    </footer>
  );
}
