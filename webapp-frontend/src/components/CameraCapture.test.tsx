import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { stubCanvas } from '../test/canvas';
import { CameraCapture } from './CameraCapture';

function stubCamera(getUserMedia: () => Promise<unknown>) {
  const mock = vi.fn(getUserMedia);
  vi.stubGlobal('navigator', { ...navigator, mediaDevices: { getUserMedia: mock } });
  return mock;
}

function fakeStream() {
  const track = { stop: vi.fn() };
  return { track, stream: { getTracks: () => [track] } };
}

describe('CameraCapture', () => {
  it('explains when the browser has no camera API', async () => {
    vi.stubGlobal('navigator', { ...navigator, mediaDevices: undefined });
    render(<CameraCapture onUse={vi.fn()} onClose={vi.fn()} />);
    expect(await screen.findByRole('alert')).toHaveTextContent(/can't use a camera on this page/);
    expect(screen.getByRole('button', { name: 'Back to upload' })).toBeInTheDocument();
  });

  it('explains a denied permission and offers to try again', async () => {
    const getUserMedia = stubCamera(async () =>
      Promise.reject(new DOMException('Permission denied', 'NotAllowedError')),
    );
    render(<CameraCapture onUse={vi.fn()} onClose={vi.fn()} />);
    expect(await screen.findByRole('alert')).toHaveTextContent('Camera access was blocked.');
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(getUserMedia).toHaveBeenCalledTimes(2);
  });

  it('explains when there is no camera', async () => {
    stubCamera(async () => Promise.reject(new DOMException('none', 'NotFoundError')));
    render(<CameraCapture onUse={vi.fn()} onClose={vi.fn()} />);
    expect(await screen.findByRole('alert')).toHaveTextContent("couldn't find a camera");
  });

  it('shows a live preview, captures, retakes and uses the photo', async () => {
    const user = userEvent.setup();
    const { stream, track } = fakeStream();
    const getUserMedia = stubCamera(async () => stream);
    vi.spyOn(HTMLVideoElement.prototype, 'videoWidth', 'get').mockReturnValue(640);
    vi.spyOn(HTMLVideoElement.prototype, 'videoHeight', 'get').mockReturnValue(480);
    vi.spyOn(HTMLMediaElement.prototype, 'play').mockResolvedValue(undefined);
    const canvas = stubCanvas();
    const onUse = vi.fn();
    render(<CameraCapture onUse={onUse} onClose={vi.fn()} />);

    expect(screen.getByLabelText('Live camera preview')).toBeInTheDocument();
    await user.click(await screen.findByRole('button', { name: 'Capture' }));
    expect(canvas.sizes).toEqual([{ width: 640, height: 480 }]);
    expect(track.stop).toHaveBeenCalled(); // the camera is off while the shot is reviewed
    expect(screen.getByRole('img', { name: 'Your selfie, just taken' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Use this photo' })).toHaveFocus();

    await user.click(screen.getByRole('button', { name: 'Retake' }));
    expect(getUserMedia).toHaveBeenCalledTimes(2);
    await user.click(await screen.findByRole('button', { name: 'Capture' }));
    await user.click(screen.getByRole('button', { name: 'Use this photo' }));
    expect(onUse).toHaveBeenCalledTimes(1);
    const file = onUse.mock.calls[0]?.[0] as File;
    expect(file.name).toBe('camera-photo.jpg');
    expect(file.type).toBe('image/jpeg');
  });

  it('turns the camera off when closed', async () => {
    const { stream, track } = fakeStream();
    stubCamera(async () => stream);
    vi.spyOn(HTMLMediaElement.prototype, 'play').mockResolvedValue(undefined);
    const { unmount } = render(<CameraCapture onUse={vi.fn()} onClose={vi.fn()} />);
    await screen.findByRole('button', { name: 'Capture' });
    unmount();
    expect(track.stop).toHaveBeenCalled();
  });
});
