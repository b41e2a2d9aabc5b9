import { useCallback, useEffect, useRef, useState } from 'react';
import { CameraIcon, RetryIcon } from './Icons';

type Problem = 'unsupported' | 'denied' | 'none' | 'busy' | 'failed';

const PROBLEMS: Record<Problem, string> = {
  unsupported:
    "This browser can't use a camera on this page (cameras need a secure https address). You can upload a photo instead.",
  denied:
    "Camera access was blocked. To use it, allow the camera for this site in your browser's settings, or upload a photo instead.",
  none: "We couldn't find a camera on this device. You can upload a photo instead.",
  busy: 'Your camera is in use by another app. Close that app and try again.',
  failed: "The camera couldn't be started. Try again, or upload a photo instead.",
};

export function cameraProblem(error: unknown): Problem {
  const name = error instanceof Error || error instanceof DOMException ? error.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'denied';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'none';
  if (name === 'NotReadableError' || name === 'AbortError') return 'busy';
  return 'failed';
}

interface Shot {
  blob: Blob;
  url: string;
}

interface CameraCaptureProps {
  onUse: (file: File) => void;
  onClose: () => void;
}

/** Live camera preview → capture → retake or use. The camera is off whenever it isn't needed. */
export function CameraCapture({ onUse, onClose }: CameraCaptureProps) {
  const video = useRef<HTMLVideoElement>(null);
  const stream = useRef<MediaStream | null>(null);
  const mounted = useRef(false);
  const actions = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<'starting' | 'live' | 'captured' | Problem>('starting');
  const [shot, setShot] = useState<Shot | null>(null);

  const stop = useCallback(() => {
    stream.current?.getTracks().forEach((track) => track.stop());
    stream.current = null;
  }, []);

  const start = useCallback(async () => {
    setState('starting');
    if (!navigator.mediaDevices?.getUserMedia) {
      setState('unsupported');
      return;
    }
    try {
      const media = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: 'user', width: { ideal: 1280 }, height: { ideal: 960 } },
        audio: false,
      });
      if (!mounted.current) {
        media.getTracks().forEach((track) => track.stop());
        return;
      }
      stop();
      stream.current = media;
      if (video.current) {
        video.current.srcObject = media;
        await video.current.play().catch(() => undefined);
      }
      setState('live');
    } catch (error) {
      if (mounted.current) setState(cameraProblem(error));
    }
  }, [stop]);

  useEffect(() => {
    mounted.current = true;
    void start();
    return () => {
      mounted.current = false;
      stop();
    };
  }, [start, stop]);

  // The button that was pressed (Capture, Retake) goes away: keep keyboard focus in the actions.
  useEffect(() => {
    if (state === 'captured' || state === 'live') {
      const active = document.activeElement;
      if (!active || active === document.body) {
        actions.current?.querySelector<HTMLButtonElement>('button')?.focus();
      }
    }
  }, [state]);

  useEffect(() => {
    if (!shot) return undefined;
    return () => URL.revokeObjectURL(shot.url);
  }, [shot]);

  const capture = () => {
    const element = video.current;
    if (!element || element.videoWidth === 0) return;
    const canvas = document.createElement('canvas');
    canvas.width = element.videoWidth;
    canvas.height = element.videoHeight;
    canvas.getContext('2d')?.drawImage(element, 0, 0);
    canvas.toBlob(
      (blob) => {
        if (!blob) return;
        stop();
        setShot({ blob, url: URL.createObjectURL(blob) });
        setState('captured');
      },
      'image/jpeg',
      0.92,
    );
  };

  const retake = () => {
    setShot(null);
    void start();
  };

  const use = () => {
    if (shot) onUse(new File([shot.blob], 'camera-photo.jpg', { type: 'image/jpeg' }));
  };

  const problem = state in PROBLEMS ? PROBLEMS[state as Problem] : null;

  return (
    <section className="camera" aria-labelledby="camera-title">
      <h2 id="camera-title" className="camera__title">
        Take a selfie
      </h2>
      <div className="camera__stage">
        <video
          ref={video}
          className="camera__video"
          hidden={state !== 'live' && state !== 'starting'}
          autoPlay
          playsInline
          muted
          aria-label="Live camera preview"
        />
        {shot && state === 'captured' && (
          <img className="camera__shot" src={shot.url} alt="Your selfie, just taken" />
        )}
        {state === 'starting' && <p className="camera__message">Starting the camera…</p>}
        {problem && (
          <p className="camera__message camera__message--problem" role="alert">
            {problem}
          </p>
        )}
      </div>
      <div className="camera__actions" ref={actions}>
        {state === 'live' && (
          <button type="button" className="button button--primary" onClick={capture}>
            <CameraIcon /> Capture
          </button>
        )}
        {state === 'captured' && (
          <>
            <button type="button" className="button button--primary" onClick={use}>
              Use this photo
            </button>
            <button type="button" className="button button--secondary" onClick={retake}>
              <RetryIcon /> Retake
            </button>
          </>
        )}
        {problem && state !== 'unsupported' && state !== 'none' && (
          <button type="button" className="button button--secondary" onClick={() => void start()}>
            <RetryIcon /> Try again
          </button>
        )}
        <button type="button" className="button button--ghost" onClick={onClose}>
          Back to upload
        </button>
      </div>
    </section>
  );
}
