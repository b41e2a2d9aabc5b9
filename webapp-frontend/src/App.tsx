import { useEffect, useRef } from 'react';
import { ErrorView } from './components/ErrorView';
import { Footer } from './components/Footer';
import { Header } from './components/Header';
import { Notice } from './components/Notice';
import { ProgressView } from './components/ProgressView';
import { ResultsView } from './components/ResultsView';
import { UploadPanel } from './components/UploadPanel';
import { useGlobalImageInput } from './hooks/useGlobalImageInput';
import { useHealth } from './hooks/useHealth';
import { useLookalike, type View } from './hooks/useLookalike';
import { plural } from './lib/format';

function announcement(view: View): string {
  if (view.kind !== 'result') return '';
  const faces = view.response.faces;
  const first = faces[0];
  if (!first) return 'No face was found.';
  return `Found ${plural(faces.length, 'face')}. Showing ${plural(first.matches.length, 'match', 'matches')}${faces.length > 1 ? ' for face 1' : ''}.`;
}

export function App() {
  const app = useLookalike();
  const health = useHealth();
  const { view, photo } = app;
  const main = useRef<HTMLElement>(null);
  const firstRender = useRef(true);

  useGlobalImageInput(view.kind !== 'busy', app.submit);

  // Move focus to the new screen's heading, so keyboard and screen-reader users follow along.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    if (view.kind !== 'busy') main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [view.kind]);

  return (
    <div className="app">
      <Header onHome={app.reset} />
      <main className="main" ref={main}>
        {app.notice && <Notice message={app.notice} onDismiss={app.dismissNotice} />}
        {view.kind === 'idle' && (
          <UploadPanel
            options={app.options}
            onOptionsChange={app.setOptions}
            onFile={app.submit}
            celebrities={health?.index.celebrities ?? null}
            demo={health?.index.demo ?? false}
          />
        )}
        {view.kind === 'busy' && (
          <ProgressView
            stage={view.stage}
            fraction={view.fraction}
            photoUrl={photo?.url ?? null}
            onCancel={app.cancel}
          />
        )}
        {view.kind === 'error' && (
          <ErrorView
            error={view.error}
            photoUrl={photo?.url ?? null}
            onRetry={app.resend}
            onReset={app.reset}
          />
        )}
        {view.kind === 'result' && photo && (
          <ResultsView
            response={view.response}
            photo={photo}
            appliedOptions={view.options}
            options={app.options}
            onOptionsChange={app.setOptions}
            onSearchAgain={app.resend}
            onReset={app.reset}
          />
        )}
        <p className="visually-hidden" aria-live="polite">
          {announcement(view)}
        </p>
      </main>
      <Footer health={health} />
    </div>
  );
}
