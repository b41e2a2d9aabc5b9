import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { HEALTH } from '../test/fixtures';
import { Footer } from './Footer';

describe('Footer', () => {
  it('says the gallery is the small demo and, on request, how to build the full IMDB one', async () => {
    const user = userEvent.setup();
    render(<Footer health={{ ...HEALTH, index: { ...HEALTH.index, demo: true } }} />);
    expect(screen.getByTestId('gallery-size')).toHaveTextContent('Gallery: 312 photos of 104 celebrities');
    const note = screen.getByTestId('demo-gallery-note');
    expect(note).toHaveTextContent('This is the small demo gallery.');
    expect(screen.getByText(/make run INDEX=models\/imdb-index/)).not.toBeVisible();
    await user.click(screen.getByText(/How to use the full IMDB gallery/));
    expect(screen.getByText(/make run INDEX=models\/imdb-index/)).toBeVisible();
    expect(note).toHaveTextContent('README.md, “Full IMDB gallery”');
  });

  it('says nothing about a demo for a full gallery, or when the server does not tell', () => {
    const { rerender } = render(
      <Footer health={{ ...HEALTH, index: { photos: 400000, celebrities: 20000, demo: false } }} />,
    );
    expect(screen.getByTestId('gallery-size')).toHaveTextContent(
      'Gallery: 400,000 photos of 20,000 celebrities',
    );
    expect(screen.queryByTestId('demo-gallery-note')).toBeNull();
    rerender(<Footer health={HEALTH} />);
    expect(screen.queryByTestId('demo-gallery-note')).toBeNull();
  });

  it('says what the model\'s licence forbids when its weights are not for commercial use', () => {
    const license = { name: 'non-commercial', commercial_use: false, summary: 'Research only.' };
    const { rerender } = render(
      <Footer health={{ ...HEALTH, model: 'arcface-mbf', model_title: 'ArcFace-MBF', model_license: license }} />,
    );
    expect(screen.getByTestId('model-license')).toHaveTextContent(
      'Model: ArcFace-MBF (non-commercial). Research only.',
    );
    rerender(<Footer health={{ ...HEALTH, model_license: { ...license, commercial_use: true } }} />);
    expect(screen.queryByTestId('model-license')).toBeNull();
  });
});
