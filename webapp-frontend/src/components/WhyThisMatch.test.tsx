import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { EXPLANATION, errorBody, match } from '../test/fixtures';
import { BASE_TINT, ExplanationView, WhyThisMatch } from './WhyThisMatch';

const photo = new Blob(['jpeg bytes'], { type: 'image/jpeg' });

function answer(status: number, body: unknown) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const fetchMock = vi.fn(async (_url: string, _init?: RequestInit) => ({
    ok: status >= 200 && status < 300,
    status,
    text: async () => text,
  }));
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

function renderWhy() {
  const user = userEvent.setup();
  render(<WhyThisMatch match={match()} photo={photo} fileName="me.jpg" box={[412, 130, 180, 224]} />);
  return user;
}

describe('WhyThisMatch', () => {
  it('asks the server on demand with the same photo, the match and the face box', async () => {
    const fetchMock = answer(200, EXPLANATION);
    const user = renderWhy();
    expect(fetchMock).not.toHaveBeenCalled();
    const button = screen.getByRole('button', { name: 'Why this match?' });
    expect(button).toHaveAttribute('aria-expanded', 'false');

    await user.click(button);

    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0] ?? [];
    expect(url).toBe('/api/explain');
    expect(init?.method).toBe('POST');
    const form = init?.body as FormData;
    expect(form.get('photo_id')).toBe('1234');
    expect(form.get('box')).toBe('412,130,180,224');
    expect(form.get('image')).toBeInstanceOf(Blob);
    expect(await screen.findByTestId('explanation')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Hide why' })).toHaveAttribute('aria-expanded', 'true');
  });

  it('shows the regions ranked, the summary, the heat map on both faces, and says it is approximate', async () => {
    answer(200, EXPLANATION);
    const user = renderWhy();
    await user.click(screen.getByRole('button', { name: 'Why this match?' }));

    expect(await screen.findByText('Eyes and nose look most alike.')).toBeInTheDocument();
    const list = screen.getByRole('list', { name: 'Parts of the face, most alike first' });
    const items = within(list).getAllByRole('listitem');
    expect(items.map((item) => item.textContent)).toEqual([
      'Eyesvery alike',
      'Nosealike',
      'Moutha little alike',
      'Eyebrowsno clear effect',
      'Jaw and face shapediffers',
    ]);
    expect(screen.getByText(/An approximation/)).toBeVisible();
    expect(screen.getByRole('img', { name: 'Your face as the model sees it' })).toHaveAttribute(
      'src',
      EXPLANATION.chips.you,
    );
    expect(screen.getByRole('img', { name: "George W Bush's face as the model sees it" }))
      .toHaveAttribute('src', EXPLANATION.chips.celebrity);
    for (const side of ['you', 'celebrity']) {
      // 2 eyes + 1 nose + 1 mouth + 2 brows + 1 jaw polygons.
      expect(screen.getByTestId(`heat-${side}`).querySelectorAll('polygon')).toHaveLength(7);
    }
    const eyes = screen.getByTestId('heat-celebrity').querySelector('polygon[data-region="eyes"]');
    const jaw = screen.getByTestId('heat-celebrity').querySelector('polygon[data-region="jaw"]');
    expect(Number(eyes?.getAttribute('fill-opacity'))).toBeGreaterThan(
      Number(jaw?.getAttribute('fill-opacity')),
    );

    await user.click(screen.getByRole('checkbox', { name: /heat map/ }));
    expect(screen.queryByTestId('heat-you')).toBeNull();
    expect(screen.queryByTestId('heat-celebrity')).toBeNull();
  });

  it('shows the server’s message when the match cannot be explained, and tries again', async () => {
    answer(422, errorBody('cannot_explain', 'No face was found at that place in the photo.'));
    const user = renderWhy();
    await user.click(screen.getByRole('button', { name: 'Why this match?' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'No face was found at that place in the photo.',
    );
    const fetchMock = answer(200, EXPLANATION);
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByTestId('explanation')).toBeInTheDocument();
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('closes and keeps the keyboard user on the button', async () => {
    answer(200, EXPLANATION);
    const user = renderWhy();
    await user.tab();
    expect(screen.getByRole('button', { name: 'Why this match?' })).toHaveFocus();
    await user.keyboard('{Enter}');
    await screen.findByTestId('explanation');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(screen.queryByTestId('explanation')).toBeNull());
    expect(screen.getByRole('button', { name: 'Why this match?' })).toHaveFocus();
  });
});

describe('ExplanationView', () => {
  it('gives a part that differs on that face only the faint base tint', () => {
    render(<ExplanationView explanation={EXPLANATION} name="George W Bush" />);
    const you = screen.getByTestId('heat-you');
    const jaw = you.querySelector('polygon[data-region="jaw"]');
    expect(Number(jaw?.getAttribute('fill-opacity'))).toBeCloseTo(BASE_TINT);
  });
});
