import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import { AddressInput } from '../src/components/AddressInput';

function Field({ initial = '' }: { initial?: string }) {
  const [value, setValue] = useState(initial);
  return (
    <>
      <label htmlFor="addr">Address</label>
      <AddressInput id="addr" value={value} onChange={setValue} />
      <button type="button">after</button>
    </>
  );
}

function options() {
  return screen.queryAllByRole('option').map((o) => o.textContent);
}

describe('AddressInput', () => {
  it('suggests words from the list for the word being typed', async () => {
    const user = userEvent.setup();
    render(<Field />);
    const input = screen.getByRole('combobox', { name: 'Address' });

    await user.type(input, 'zo');

    expect(input).toHaveAttribute('aria-expanded', 'true');
    expect(options()).toEqual(['zodiac', 'zombie', 'zone', 'zoning', 'zoom']);
    expect(screen.getByRole('option', { name: 'zodiac' })).toHaveAttribute('aria-selected', 'true');
  });

  it('completes the current word with Enter and moves on to the next', async () => {
    const user = userEvent.setup();
    render(<Field />);
    const input = screen.getByRole('combobox');

    await user.type(input, 'tig');
    await user.keyboard('{Enter}');
    expect(input).toHaveValue('tiger-');

    // The next word after a separator gets its own suggestions.
    await user.type(input, 'zon');
    expect(options()).toEqual(['zone', 'zoning']);
    await user.keyboard('{ArrowDown}{Enter}');
    expect(input).toHaveValue('tiger-zoning-');
  });

  it('completes after spaces and dots too, and the fourth word gets no hyphen', async () => {
    const user = userEvent.setup();
    render(<Field />);
    const input = screen.getByRole('combobox');

    await user.type(input, 'tiger mosaic.lemon waf');
    expect(options()).toEqual(['wafer', 'waffle']);
    await user.keyboard('{Tab}');

    expect(input).toHaveValue('tiger mosaic.lemon wafer');
    expect(input).toHaveFocus();
    expect(input).toHaveAttribute('aria-expanded', 'false');
    expect(screen.getByText('4 of 4 words')).toBeInTheDocument();
  });

  it('takes a clicked suggestion', async () => {
    const user = userEvent.setup();
    render(<Field />);
    const input = screen.getByRole('combobox');
    await user.type(input, 'zom');
    await user.click(screen.getByRole('option', { name: 'zombie' }));
    expect(input).toHaveValue('zombie-');
  });

  it('closes the list on Escape without changing the text', async () => {
    const user = userEvent.setup();
    render(<Field />);
    const input = screen.getByRole('combobox');
    await user.type(input, 'zo');
    await user.keyboard('{Escape}');
    expect(options()).toEqual([]);
    expect(input).toHaveAttribute('aria-expanded', 'false');
    expect(input).toHaveValue('zo');
  });

  it('lets Tab move on when there is nothing to complete', async () => {
    const user = userEvent.setup();
    render(<Field />);
    await user.type(screen.getByRole('combobox'), 'zoom');
    await user.tab();
    expect(screen.getByRole('button', { name: 'after' })).toHaveFocus();
  });

  it('flags words that are not in the list', async () => {
    const user = userEvent.setup();
    render(<Field />);
    await user.type(screen.getByRole('combobox'), 'tigr mosaic ');
    expect(screen.getByText('Not in the word list: tigr')).toBeInTheDocument();
  });
});
