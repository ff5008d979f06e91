// Issue 23 item 4 (text: direction, the 64 KiB limit, links) and the composer's
// parts of items 5 and 8 (drafts, pasted images).

import { fireEvent, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { HistoryEntry } from '../src/api/types';
import { COUNT_FROM, Composer, MAX_TEXT_BYTES, utf8Length } from '../src/components/Composer';
import { linkify, safeHref } from '../src/lib/linkify';
import { ALICE, BOB, historyEntry, messageList } from './helpers';

type SendFiles = (files: File[], caption: string) => void;

function composer(draftKey?: string) {
  const onSend = vi.fn().mockResolvedValue(undefined);
  const onSendFiles = vi.fn<SendFiles>();
  const view = render(<Composer label="Message to Bob" onSend={onSend} onSendFiles={onSendFiles} draftKey={draftKey} />);
  return { onSend, onSendFiles, view, box: screen.getByRole('textbox', { name: 'Message to Bob' }), user: userEvent.setup() };
}

function entry(n: number, text: string, direction: 'in' | 'out' = 'in'): HistoryEntry {
  const ends = direction === 'in' ? { from: BOB, to: ALICE } : { from: ALICE, to: BOB };
  return historyEntry(n, { ...ends, direction, text, position: n * 2 });
}

const list = (messages: HistoryEntry[]) => messageList(messages);

describe('links', () => {
  it('links http and https only, without the sentence’s punctuation', () => {
    render(<p>{linkify('see https://example.org/a?b=1. and (http://x.test/y) or javascript:alert(1) ftp://z')}</p>);
    const links = screen.getAllByRole('link');
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['https://example.org/a?b=1', 'http://x.test/y']);
    for (const a of links) {
      expect(a).toHaveAttribute('target', '_blank');
      expect(a).toHaveAttribute('rel', 'noopener noreferrer');
    }
    expect(screen.getByText(/javascript:alert/)).not.toHaveAttribute('href');
  });

  it('refuses anything that is not http(s)', () => {
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('data:text/html,hi')).toBeNull();
    expect(safeHref('https://example.org')).toBe('https://example.org/');
  });

  it('shows messages with their own direction and links in them', () => {
    render(list([entry(1, 'שלום https://example.org')]));
    const text = screen.getByText(/שלום/);
    expect(text).toHaveAttribute('dir', 'auto');
    expect(within(text).getByRole('link')).toHaveAttribute('href', 'https://example.org/');
  });
});

describe('the 64 KiB limit', () => {
  it('counts UTF-8 bytes as the node does', () => {
    expect(utf8Length('é')).toBe(2);
    expect(utf8Length('😀')).toBe(4);
  });

  it('shows the bytes left near the limit, and offers a file beyond it', () => {
    const { box, onSend, onSendFiles } = composer();
    expect(box).toHaveAttribute('dir', 'auto');
    fireEvent.change(box, { target: { value: 'a'.repeat(COUNT_FROM - 1) } });
    expect(screen.queryByText(/bytes left/)).not.toBeInTheDocument();
    fireEvent.change(box, { target: { value: 'é'.repeat(MAX_TEXT_BYTES / 2) } });
    expect(screen.getByText('0 bytes left of 64 KiB.')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled();
    const long = 'é'.repeat(MAX_TEXT_BYTES / 2) + 'x';
    fireEvent.change(box, { target: { value: long } });
    expect(screen.getByText('1 bytes over the limit of 64 KiB for a message.')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: 'Send as a file' }));
    const [files, caption] = onSendFiles.mock.calls[0] ?? [[], ''];
    expect(files[0]?.name).toBe('message.txt');
    expect(files[0]?.size).toBe(utf8Length(long));
    expect(caption).toBe('');
    expect(box).toHaveValue('');
  });
});

describe('drafts and pasting', () => {
  it('keeps a draft per key across a remount, and forgets it once sent', async () => {
    const first = composer('draft:bob');
    await first.user.type(first.box, 'half a thought');
    first.view.unmount();
    const other = composer('draft:carol');
    expect(other.box).toHaveValue('');
    other.view.unmount();
    const again = composer('draft:bob');
    expect(again.box).toHaveValue('half a thought');
    await again.user.type(again.box, '{Enter}');
    expect(again.onSend).toHaveBeenCalledWith('half a thought');
    again.view.unmount();
    expect(composer('draft:bob').box).toHaveValue('');
  });

  it('attaches a pasted image', () => {
    const { box, onSendFiles } = composer();
    const image = new File([new Uint8Array(10)], 'image.png', { type: 'image/png' });
    fireEvent.paste(box, { clipboardData: { files: [image], getData: () => '' } });
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('image.png');
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(onSendFiles).toHaveBeenCalledWith([image], '');
  });
});

describe('new messages while scrolled up', () => {
  it('offers a button that goes down to them', () => {
    // jsdom has no layout: a list taller than its view, scrolled to the top.
    const height = vi.spyOn(HTMLElement.prototype, 'scrollHeight', 'get').mockReturnValue(2000);
    const client = vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(300);
    const { rerender } = render(list([entry(1, 'one')]));
    const scroller = screen.getByRole('region', { name: 'Messages with Bob' });
    scroller.scrollTop = 0;
    fireEvent.scroll(scroller);
    expect(screen.queryByRole('button', { name: /New messages/ })).not.toBeInTheDocument();
    rerender(list([entry(1, 'one'), entry(2, 'two')]));
    const button = screen.getByRole('button', { name: /New messages/ });
    fireEvent.click(button);
    expect(scroller.scrollTop).toBe(2000);
    expect(screen.queryByRole('button', { name: /New messages/ })).not.toBeInTheDocument();
    height.mockRestore();
    client.mockRestore();
  });
});
