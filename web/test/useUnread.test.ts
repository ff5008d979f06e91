import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { ConversationSummary } from '../src/api/types';
import { MAX_READS, useUnread } from '../src/hooks/useUnread';
import { BOB, CAROL, json, mockFetch, sessionWrapper } from './helpers';

const from = (sender: string, n: number) => ({
  type: 'message_received' as const,
  id: n.toString(16).padStart(32, '0'),
  from: sender,
  text: 'hi',
  timestamp: n,
  position: n,
});

const summary = (peer: string, unread: number): ConversationSummary => ({
  peer,
  unread,
  last_at: 1_700_000_000_000,
  last_text: null,
  last_direction: null,
});

/** A `GET /v1/conversations` the test answers by hand, one request at a time. */
function controlledConversations() {
  const pending: ((list: ConversationSummary[]) => void)[] = [];
  const route = () => new Promise<Response>((resolve) => pending.push((list) => resolve(json(200, list))));
  return {
    route,
    requests: () => pending.length,
    /** Answers the `i`-th request (from 0) with `list`. */
    answer: (i: number, list: ConversationSummary[]) => act(async () => pending[i]?.(list)),
  };
}

function setup(routes: Parameters<typeof mockFetch>[0], open: string | null = null) {
  const { fetch, calls } = mockFetch(routes);
  const hook = renderHook(({ open }) => useUnread(open), { wrapper: sessionWrapper(fetch), initialProps: { open } });
  const reads = () => calls.filter((c) => c.url === '/v1/conversations').length;
  return { ...hook, reads };
}

describe('useUnread', () => {
  it('counts incoming messages for conversations that are not open', async () => {
    // A node without `GET /v1/conversations` (404): counting is live only.
    const { result, rerender, reads } = setup({}, BOB);
    await waitFor(() => expect(reads()).toBe(1));

    act(() => {
      result.current.handleEvent(from(CAROL, 1));
      result.current.handleEvent(from(CAROL, 2));
      result.current.handleEvent(from(BOB, 3)); // Bob's conversation is open
      result.current.handleEvent({ type: 'status_changed', id: 'x', to: CAROL, status: 'read' });
    });
    expect(result.current.counts).toEqual({ [CAROL]: 2 });
    expect(result.current.total).toBe(2);

    // Opening Carol's conversation reads it; Bob's now counts.
    rerender({ open: CAROL });
    act(() => result.current.handleEvent(from(BOB, 4)));
    expect(result.current.counts).toEqual({ [CAROL]: 0, [BOB]: 1 });
    expect(result.current.total).toBe(1);
  });

  it('starts from the node’s counts, shows the open conversation as read, and adds live messages', async () => {
    const { result, reads } = setup({ 'GET /v1/conversations': json(200, [summary(BOB, 3), summary(CAROL, 2)]) }, CAROL);
    await waitFor(() => expect(result.current.counts).toEqual({ [BOB]: 3, [CAROL]: 0 }));
    expect(result.current.total).toBe(3);

    act(() => result.current.handleEvent(from(BOB, 1)));
    expect(result.current.counts[BOB]).toBe(4);
    expect(reads()).toBe(1);
  });

  it('reads again when a message arrived during the read, so it is counted once', async () => {
    const node = controlledConversations();
    const { result } = setup({ 'GET /v1/conversations': node.route });
    await waitFor(() => expect(node.requests()).toBe(1));

    // Bob's message arrives while the node answers: counted live at once…
    act(() => result.current.handleEvent(from(BOB, 1)));
    expect(result.current.counts[BOB]).toBe(1);
    // …and the node's answer may already include it (2 = 1 before + this one).
    // Taking it and keeping the live +1 would say 3; it is read again instead.
    await node.answer(0, [summary(BOB, 2)]);
    await waitFor(() => expect(node.requests()).toBe(2));
    expect(result.current.counts[BOB]).toBe(1);

    await node.answer(1, [summary(BOB, 2)]);
    await waitFor(() => expect(result.current.counts[BOB]).toBe(2));

    // After the read, live messages add to the loaded count.
    act(() => result.current.handleEvent(from(BOB, 2)));
    expect(result.current.counts[BOB]).toBe(3);
    expect(node.requests()).toBe(2);
  });

  it('gives up re-reading under a flood and takes the last answer', async () => {
    const node = controlledConversations();
    const { result } = setup({ 'GET /v1/conversations': node.route });
    for (let i = 0; i < MAX_READS; i += 1) {
      await waitFor(() => expect(node.requests()).toBe(i + 1));
      act(() => result.current.handleEvent(from(CAROL, i)));
      await node.answer(i, [summary(CAROL, 10 + i)]);
    }
    await waitFor(() => expect(result.current.counts[CAROL]).toBe(10 + MAX_READS - 1));
    expect(node.requests()).toBe(MAX_READS);
  });

  it('folds loads asked for during a read into one more read', async () => {
    const node = controlledConversations();
    const { result } = setup({ 'GET /v1/conversations': node.route });
    await waitFor(() => expect(node.requests()).toBe(1));
    act(() => {
      void result.current.load();
      void result.current.load();
    });
    expect(node.requests()).toBe(1);
    await node.answer(0, [summary(BOB, 1)]);
    await waitFor(() => expect(node.requests()).toBe(2));
    await node.answer(1, [summary(BOB, 4)]);
    await waitFor(() => expect(result.current.counts[BOB]).toBe(4));
    expect(node.requests()).toBe(2);
  });

  it('keeps counting live when the node cannot be read', async () => {
    const { result, reads } = setup({ 'GET /v1/conversations': json(500, { error: { code: 'internal', message: 'boom' } }) });
    act(() => result.current.handleEvent(from(BOB, 1)));
    await waitFor(() => expect(reads()).toBe(1));
    await act(async () => {});
    expect(result.current.counts).toEqual({ [BOB]: 1 });
  });
});
