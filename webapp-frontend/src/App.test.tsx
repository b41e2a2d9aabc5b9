import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App';
import { NETWORK_MESSAGE } from './api/client';
import type { MatchResponse } from './api/contract';
import { stubBitmap, stubCanvas } from './test/canvas';
import { FakeXHR, HEALTH, ONE_FACE, TWO_FACES, errorBody } from './test/fixtures';

const photo = (name = 'me.jpg', type = 'image/jpeg') => new File(['jpeg bytes'], name, { type });

function answerWith(status: number, body: MatchResponse | string) {
  FakeXHR.onSend = (xhr) => act(() => xhr.respond(status, body));
}

function setup() {
  vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify(HEALTH))));
  FakeXHR.reset();
  vi.stubGlobal('XMLHttpRequest', FakeXHR);
  const user = userEvent.setup({ applyAccept: false });
  render(<App />);
  const upload = (file = photo()) => user.upload(screen.getByLabelText('Photo to upload'), file);
  return { user, upload };
}

beforeEach(() => FakeXHR.reset());

describe('idle', () => {
  it('explains what to do and that the photo is never stored', async () => {
    setup();
    expect(screen.getByRole('heading', { level: 1, name: 'Which celebrity do you look like?' }))
      .toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Choose a photo' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Use your camera' })).toBeInTheDocument();
    expect(screen.getByText(/processed in memory to find matches and is never stored/)).toBeVisible();
    await screen.findByText(/among 104 celebrities/); // let the health check settle
  });

  it('shows the gallery size from /api/health in the footer', async () => {
    setup();
    expect(await screen.findByText('Gallery: 312 photos of 104 celebrities')).toBeInTheDocument();
    expect(await screen.findByText(/among 104 celebrities/)).toBeInTheDocument();
  });

  it('says so when the health check fails', async () => {
    setup();
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('offline'))));
    render(<App />);
    expect(await screen.findByText('Gallery size unavailable right now')).toBeInTheDocument();
  });
});

describe('upload flow', () => {
  it('uploads the photo and shows a card per match with name, score, age and similarity', async () => {
    const { upload } = setup();
    await upload();

    expect(await screen.findByRole('heading', { name: 'Looking for your look-alikes' }))
      .toBeInTheDocument();
    await waitFor(() => expect(FakeXHR.requests).toHaveLength(1));
    const request = FakeXHR.last();
    expect(request.url).toBe('/api/match');
    expect((request.field('image') as File).name).toBe('me.jpg');
    expect(request.field('top_k')).toBe('5');
    expect(request.field('gender')).toBeNull();
    act(() => request.respond(200, ONE_FACE));

    const cards = await screen.findAllByTestId('match-card');
    expect(cards).toHaveLength(2);
    const [first, second] = cards as [HTMLElement, HTMLElement];

    expect(within(first).getByRole('heading', { name: 'George W Bush' })).toBeInTheDocument();
    expect(within(first).getByTestId('match-score')).toHaveTextContent('93 / 100');
    expect(within(first).getByRole('meter', { name: 'Look-alike score' }))
      .toHaveAttribute('aria-valuenow', '93');
    expect(within(first).getByText('age 56 in 2003')).toBeInTheDocument();
    expect(within(first).getByText('similarity 0.612')).toBeInTheDocument();
    expect(within(first).getByRole('img', { name: 'George W Bush, age 56 in 2003' }))
      .toHaveAttribute('src', '/api/photos/1234');
    expect(within(first).getByText('You')).toBeInTheDocument();

    expect(within(second).getByTestId('match-name')).toHaveTextContent('Meryl Streep');
    expect(within(second).getByTestId('match-score')).toHaveTextContent('72 / 100');
    expect(within(second).queryByTestId('match-age')).toBeNull(); // age unknown: left out
    expect(within(second).getByText('similarity 0.501')).toBeInTheDocument();

    expect(screen.getByRole('heading', { level: 1, name: 'Your look-alikes' })).toHaveFocus();
    expect(screen.getByText('We found one face in your photo.')).toBeInTheDocument();
  });

  it("shows the user's face, cut from the photo, beside each celebrity", async () => {
    const { upload } = setup();
    stubBitmap(1024, 768);
    const canvas = stubCanvas();
    answerWith(200, ONE_FACE);
    await upload();

    const crops = await screen.findAllByRole('img', { name: 'Your face' });
    expect(crops).toHaveLength(2);
    crops.forEach((crop) => expect(crop).toHaveAttribute('src', 'data:image/jpeg;base64,FACE'));
    expect(canvas.context.drawImage).toHaveBeenCalledTimes(1); // one crop per face, reused
  });

  it('sends the chosen top-k and gender as form fields', async () => {
    const { user, upload } = setup();
    await user.selectOptions(screen.getByLabelText('Matches per face'), '3');
    await user.click(screen.getByRole('radio', { name: 'Women' }));
    answerWith(200, ONE_FACE);
    await upload();
    await screen.findAllByTestId('match-card');
    expect(FakeXHR.last().field('top_k')).toBe('3');
    expect(FakeXHR.last().field('gender')).toBe('female');
  });

  it('searches the same photo again when the options change on the results page', async () => {
    const { user, upload } = setup();
    answerWith(200, ONE_FACE);
    await upload();
    await screen.findAllByTestId('match-card');
    expect(screen.queryByRole('button', { name: 'Update matches' })).toBeNull();

    await user.click(screen.getByRole('radio', { name: 'Men' }));
    await user.click(screen.getByRole('button', { name: 'Update matches' }));
    await screen.findAllByTestId('match-card');
    expect(FakeXHR.requests).toHaveLength(2);
    expect(FakeXHR.last().field('gender')).toBe('male');
    const [before, after] = FakeXHR.requests.map((xhr) => xhr.field('image') as File);
    expect(after?.name).toBe('me.jpg');
    expect(await after?.text()).toBe(await before?.text());
  });

  it('can be cancelled while uploading', async () => {
    const { user, upload } = setup();
    await upload();
    await user.click(await screen.findByRole('button', { name: 'Cancel' }));
    expect(FakeXHR.last().aborted).toBe(true);
    expect(screen.getByRole('button', { name: 'Choose a photo' })).toBeInTheDocument();
  });

  it('takes a photo pasted from the clipboard', async () => {
    setup();
    answerWith(200, ONE_FACE);
    fireEvent.paste(document.body, { clipboardData: { files: [photo('pasted.png', 'image/png')], items: [] } });
    await screen.findAllByTestId('match-card');
    expect((FakeXHR.last().field('image') as File).name).toBe('pasted.png');
  });

  it('takes a photo dropped on the drop zone', async () => {
    setup();
    answerWith(200, ONE_FACE);
    fireEvent.drop(screen.getByTestId('dropzone'), {
      dataTransfer: { files: [photo('dropped.jpg')], items: [] },
    });
    await screen.findAllByTestId('match-card');
    expect((FakeXHR.last().field('image') as File).name).toBe('dropped.jpg');
  });

  it('rejects a file that is not an image before uploading', async () => {
    const { upload } = setup();
    await upload(photo('notes.txt', 'text/plain'));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      '"notes.txt" isn\'t a photo. Please choose an image file, such as a JPEG or PNG.',
    );
    expect(FakeXHR.requests).toHaveLength(0);
  });

  it('rejects a photo over 15 MB that cannot be shrunk, before uploading', async () => {
    const { upload } = setup();
    const big = new File([new Uint8Array(16 * 1024 * 1024)], 'huge.jpg', { type: 'image/jpeg' });
    await upload(big);
    expect(await screen.findByTestId('notice')).toHaveTextContent(
      'That photo is 16 MB; the limit is 15 MB. Please choose a smaller one.',
    );
    expect(FakeXHR.requests).toHaveLength(0);
  });
});

describe('group photos', () => {
  async function showTwoFaces() {
    const helpers = setup();
    answerWith(200, TWO_FACES);
    await helpers.upload();
    await screen.findAllByTestId('match-card');
    return helpers;
  }

  it('draws a box on each face, scaled to the photo', async () => {
    await showTwoFaces();
    const box = screen.getByRole('button', { name: 'Show matches for face 1' });
    // [1200, 200, 300, 300] in a 2000×1000 image
    expect(box).toHaveStyle({ left: '60%', top: '20%', width: '15%', height: '30%' });
    expect(screen.getByRole('button', { name: 'Show matches for face 2' }))
      .toHaveStyle({ left: '20%', top: '25%', width: '10%', height: '20%' });
  });

  it('switches faces with the tabs, the boxes and the keyboard', async () => {
    const { user } = await showTwoFaces();
    const tabs = screen.getAllByRole('tab');
    expect(tabs).toHaveLength(2);
    expect(tabs[0]).toHaveAttribute('aria-selected', 'true');
    expect(screen.getByTestId('match-name')).toHaveTextContent('Face One Match');

    await user.click(screen.getByRole('tab', { name: /Face 2/ }));
    expect(screen.getByRole('tab', { name: /Face 2/ })).toHaveAttribute('aria-selected', 'true');
    expect(screen.getAllByTestId('match-name').map((name) => name.textContent)).toEqual([
      'Face Two Match',
      'Face Two Runner-up',
    ]);
    expect(screen.getByRole('tabpanel')).toHaveAccessibleName(/Face 2/);

    await user.keyboard('{ArrowLeft}');
    expect(screen.getByRole('tab', { name: /Face 1/ })).toHaveFocus();
    expect(screen.getByTestId('match-name')).toHaveTextContent('Face One Match');

    await user.keyboard('{End}');
    expect(screen.getByRole('tab', { name: /Face 2/ })).toHaveFocus();
    await user.keyboard('{ArrowRight}'); // wraps around
    expect(screen.getByRole('tab', { name: /Face 1/ })).toHaveAttribute('aria-selected', 'true');

    await user.click(screen.getByRole('button', { name: 'Show matches for face 2' }));
    expect(screen.getByRole('button', { name: 'Show matches for face 2' }))
      .toHaveAttribute('aria-pressed', 'true');
    expect(screen.getAllByTestId('match-card')).toHaveLength(2);
    expect(screen.getByText('Matches for face 2')).toBeInTheDocument();
  });

  it('says when more faces were found than matched', async () => {
    setup();
    answerWith(200, { ...TWO_FACES, faces_total: 27 });
    await userEvent.upload(screen.getByLabelText('Photo to upload'), photo());
    expect(await screen.findByText(/Showing the 2 largest of 27\./)).toBeInTheDocument();
  });
});

describe('errors', () => {
  it('shows the server message for a 415 and offers another photo', async () => {
    const { user, upload } = setup();
    answerWith(415, errorBody('not_an_image', 'This file is not an image we can read.'));
    await upload(photo('fake.jpg'));

    expect(await screen.findByTestId('error-message')).toHaveTextContent(
      'This file is not an image we can read.',
    );
    expect(screen.getByRole('heading', { name: "That file isn't a photo we can read" })).toHaveFocus();
    expect(screen.queryByRole('button', { name: 'Try again' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Try another photo' }));
    expect(screen.getByRole('button', { name: 'Choose a photo' })).toBeInTheDocument();
  });

  it('explains a 422 no_face with tips', async () => {
    const { upload } = setup();
    const message = 'No face was found. Use a clear, front-facing, well-lit face.';
    answerWith(422, errorBody('no_face', message));
    await upload();

    expect(await screen.findByRole('heading', { name: "We couldn't find a face" })).toBeInTheDocument();
    expect(screen.getByTestId('error-message')).toHaveTextContent(message);
    expect(screen.getByRole('heading', { name: 'Tips for a better match' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Try another photo' })).toBeInTheDocument();
  });

  it('shows a network failure and retries the same photo', async () => {
    const { user, upload } = setup();
    FakeXHR.onSend = (xhr) => act(() => xhr.fail());
    await upload();

    expect(await screen.findByTestId('error-message')).toHaveTextContent(NETWORK_MESSAGE);
    expect(screen.getByRole('heading', { name: "Can't reach the server" })).toBeInTheDocument();

    answerWith(200, ONE_FACE);
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findAllByTestId('match-card')).toHaveLength(2);
    expect(FakeXHR.requests).toHaveLength(2);
  });

  it('words a server error without the API body plainly, and allows a retry', async () => {
    const { upload } = setup();
    answerWith(503, '<html>Service Unavailable</html>');
    await upload();
    expect(await screen.findByTestId('error-message')).toHaveTextContent(
      'The server ran into a problem (error 503). Please try again in a moment.',
    );
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });
});
