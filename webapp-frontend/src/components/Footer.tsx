import type { HealthResponse } from '../api/contract';
import { plural } from '../lib/format';
import { LockIcon } from './Icons';

/** The README section that says how to build and serve the full IMDB gallery. */
export const FULL_GALLERY_SECTION = 'README.md, “Full IMDB gallery”';
export const FULL_GALLERY_COMMANDS = ['make imdb', 'make run INDEX=models/imdb-index'];

export function gallerySizeText(health: HealthResponse | null | undefined): string {
  if (health === undefined) return 'Checking the gallery…';
  if (health === null) return 'Gallery size unavailable right now';
  const { photos, celebrities } = health.index;
  return `Gallery: ${plural(photos, 'photo')} of ${plural(celebrities, 'celebrity', 'celebrities')}`;
}

/** When the server runs the small bundled demo: one line on how to get the full IMDB gallery. */
export function DemoGalleryNote() {
  return (
    <details className="gallery-note" data-testid="demo-gallery-note">
      <summary>
        This is the small demo gallery. How to use the full IMDB gallery (about 20,000
        celebrities)
      </summary>
      <p>
        Run these in the project folder (a ~7 GB download), as {FULL_GALLERY_SECTION} explains:
      </p>
      <pre>
        <code>{FULL_GALLERY_COMMANDS.join('\n')}</code>
      </pre>
    </details>
  );
}

export function Footer({ health }: { health: HealthResponse | null | undefined }) {
  return (
    <footer className="footer">
      <div className="footer__inner">
        <div className="footer__gallery-block">
          <p className="footer__gallery" data-testid="gallery-size">
            {gallerySizeText(health)}
          </p>
          {health?.index.demo && <DemoGalleryNote />}
          {health && !health.model_license.commercial_use && (
            <p className="footer__license" data-testid="model-license">
              Model: {health.model_title ?? health.model} ({health.model_license.name}).{' '}
              {health.model_license.summary}
            </p>
          )}
        </div>
        <p className="footer__privacy">
          <LockIcon width={16} height={16} /> Photos are processed in memory and never stored.
        </p>
      </div>
    </footer>
  );
}
