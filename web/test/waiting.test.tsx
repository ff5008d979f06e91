// Issue 23 item 1: a message that came before ones its author wrote earlier shows
// "waiting for earlier messages" briefly, and never holds anything back.

import { act, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HistoryEntry, MessageId } from '../src/api/types';
import { WAITING_NOTE_MS } from '../src/components/MessageList';
import { historyEntry, messageList } from './helpers';

function entry(n: number, position: number): HistoryEntry {
  return historyEntry(n, { position, n });
}

function list(messages: HistoryEntry[], fresh: ReadonlySet<MessageId>) {
  return messageList(messages, fresh);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('waiting for earlier messages', () => {
  it('shows above a fresh message with a gap before it, then goes by itself', () => {
    vi.useFakeTimers();
    const third = entry(3, 30);
    const { rerender } = render(list([entry(1, 10), third], new Set([third.id])));
    expect(screen.getByRole('status')).toHaveTextContent('Waiting for earlier messages…');
    // Everything that did arrive is shown meanwhile.
    expect(screen.getByText('text 3')).toBeInTheDocument();
    act(() => vi.advanceTimersByTime(WAITING_NOTE_MS + 1));
    expect(screen.queryByText(/Waiting for earlier/)).toBeNull();
    rerender(list([entry(1, 10), third], new Set([third.id])));
    expect(screen.queryByText(/Waiting for earlier/)).toBeNull();
  });

  it('goes as soon as the missing message arrives, and never shows for history', () => {
    const third = entry(3, 30);
    const { rerender } = render(list([entry(1, 10), third], new Set([third.id])));
    expect(screen.getByText(/Waiting for earlier/)).toBeInTheDocument();
    const second = entry(2, 20);
    rerender(list([entry(1, 10), second, third], new Set([third.id, second.id])));
    expect(screen.queryByText(/Waiting for earlier/)).toBeNull();
    expect(screen.getAllByText(/^text /).map((e) => e.textContent)).toEqual(['text 1', 'text 2', 'text 3']);
    rerender(list([entry(1, 10), third], new Set()));
    expect(screen.queryByText(/Waiting for earlier/)).toBeNull();
  });
});
