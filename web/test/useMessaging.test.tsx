import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { HistoryEntry, MessageStatus } from '../src/api/types';
import { mergeNewest, PAGE_SIZE, useMessaging } from '../src/hooks/useMessaging';
import { ALICE, apiError, BOB, CAROL, json, mockFetch, sessionWrapper, type Call } from './helpers';

function entry(n: number, direction: 'in' | 'out' = 'in', status: MessageStatus = 'delivered'): HistoryEntry {
  return {
    id: n.toString(16).padStart(32, '0'),
    from: direction === 'in' ? BOB : ALICE,
    to: direction === 'in' ? ALICE : BOB,
    direction,
    text: `message ${n}`,
    timestamp: 1_700_000_000_000 + n * 1000,
    status,
    position: n * 2,
  };
}

/** Bob's conversation of `total` messages (ids 1..total), paged like the node. */
function history(total: number) {
  const all = Array.from({ length: total }, (_, i) => entry(i + 1));
  return (call: Call) => {
    const url = new URL(call.url, 'http://node');
    const limit = Number(url.searchParams.get('limit') ?? 50);
    const before = url.searchParams.get('before');
    const end = before ? all.findIndex((m) => m.id === before) : all.length;
    return json(200, all.slice(Math.max(0, end - limit), end));
  };
}

const BOB_MESSAGES = `GET /v1/conversations/${BOB}/messages`;

function setup(routes: Parameters<typeof mockFetch>[0], peer: string | null = BOB) {
  const { fetch, calls } = mockFetch(routes);
  const hook = renderHook(({ peer }) => useMessaging(peer, ALICE), {
    wrapper: sessionWrapper(fetch),
    initialProps: { peer },
  });
  return { ...hook, calls };
}

describe('useMessaging', () => {
  it('loads the newest page, oldest first', async () => {
    const { result, calls } = setup({ [BOB_MESSAGES]: history(3) });
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.messages.map((m) => m.text)).toEqual(['message 1', 'message 2', 'message 3']);
    expect(result.current.hasMore).toBe(false);
    expect(calls[0]?.url).toBe(`/v1/conversations/${BOB}/messages?limit=${PAGE_SIZE}`);
  });

  it('loads older pages with before = the oldest loaded id', async () => {
    const { result, calls } = setup({ [BOB_MESSAGES]: history(PAGE_SIZE + 10) });
    await waitFor(() => expect(result.current.messages).toHaveLength(PAGE_SIZE));
    expect(result.current.hasMore).toBe(true);
    const oldest = result.current.messages[0]!.id;
    expect(oldest).toBe(entry(11).id);

    await act(() => result.current.loadOlder());

    expect(calls[1]?.url).toBe(`/v1/conversations/${BOB}/messages?limit=${PAGE_SIZE}&before=${oldest}`);
    expect(result.current.messages).toHaveLength(PAGE_SIZE + 10);
    expect(result.current.messages[0]?.text).toBe('message 1');
    expect(result.current.messages.at(-1)?.text).toBe(`message ${PAGE_SIZE + 10}`);
    expect(result.current.hasMore).toBe(false);

    // Nothing more to load: no further request.
    await act(() => result.current.loadOlder());
    expect(calls).toHaveLength(2);
  });

  it('appends a message_received from the open conversation only', async () => {
    const { result } = setup({ [BOB_MESSAGES]: history(1) });
    await waitFor(() => expect(result.current.loading).toBe(false));

    const id = 'f'.repeat(32);
    act(() => {
      result.current.handleEvent({ type: 'message_received', id, from: BOB, text: 'live!', timestamp: 5, position: 1e15 });
      result.current.handleEvent({ type: 'message_received', id: 'e'.repeat(32), from: CAROL, text: 'other', timestamp: 6, position: 1e15 });
      // The same event twice (say, after a resync) shows once.
      result.current.handleEvent({ type: 'message_received', id, from: BOB, text: 'live!', timestamp: 5, position: 1e15 });
    });

    expect(result.current.messages.map((m) => m.text)).toEqual(['message 1', 'live!']);
    expect(result.current.messages[1]).toMatchObject({ direction: 'in', from: BOB, to: ALICE });
  });

  it('puts messages that arrive out of order in their place, and our own where the node says', async () => {
    const { result } = setup({
      [BOB_MESSAGES]: history(2),
      'POST /v1/messages': json(202, { id: 'a'.repeat(32), status: 'queued', position: 9 }),
    });
    await waitFor(() => expect(result.current.loading).toBe(false));
    const live = (n: number, position: number) => ({
      type: 'message_received' as const,
      id: n.toString(16).padStart(32, '0'),
      from: BOB,
      text: `live ${n}`,
      timestamp: n,
      position,
      n,
    });
    act(() => {
      result.current.handleEvent(live(5, 11));
      result.current.handleEvent(live(3, 7));
    });
    await act(() => result.current.send('mine'));
    act(() => result.current.handleEvent(live(4, 8)));
    expect(result.current.messages.map((m) => m.text)).toEqual(['message 1', 'message 2', 'live 3', 'live 4', 'mine', 'live 5']);
    expect(result.current.fresh.has(live(5, 11).id)).toBe(true);
  });

  it('sends, shows the message as queued, and follows status_changed', async () => {
    const id = 'a'.repeat(32);
    const { result, calls } = setup({
      [BOB_MESSAGES]: json(200, []),
      'POST /v1/messages': json(202, { id, status: 'queued' }),
    });
    await waitFor(() => expect(result.current.loading).toBe(false));

    await act(() => result.current.send('hello'));
    expect(calls.at(-1)?.body).toEqual({ to: BOB, text: 'hello' });
    expect(result.current.messages).toEqual([
      expect.objectContaining({ id, direction: 'out', from: ALICE, to: BOB, text: 'hello', status: 'queued' }),
    ]);

    act(() => result.current.handleEvent({ type: 'status_changed', id, to: BOB, status: 'delivered' }));
    expect(result.current.messages[0]?.status).toBe('delivered');
  });

  it('rejects send with the API error and adds nothing', async () => {
    const { result } = setup({
      [BOB_MESSAGES]: json(200, []),
      'POST /v1/messages': apiError(404, 'not_a_contact', 'not a contact'),
    });
    await waitFor(() => expect(result.current.loading).toBe(false));
    await expect(act(() => result.current.send('x'))).rejects.toThrow('not a contact');
    expect(result.current.messages).toEqual([]);
  });

  it('re-reads the newest page for a status of a message it has not seen', async () => {
    let page: HistoryEntry[] = [];
    const { result, calls } = setup({ [BOB_MESSAGES]: () => json(200, page) });
    await waitFor(() => expect(result.current.loading).toBe(false));

    page = [entry(9, 'out', 'sent')]; // sent from the CLI
    act(() => result.current.handleEvent({ type: 'status_changed', id: entry(9).id, to: BOB, status: 'sent' }));
    await waitFor(() => expect(result.current.messages).toHaveLength(1));
    expect(calls).toHaveLength(2);

    // Another conversation's status is none of its business.
    act(() => result.current.handleEvent({ type: 'status_changed', id: 'c'.repeat(32), to: CAROL, status: 'sent' }));
    expect(calls).toHaveLength(2);
  });

  it('keeps a delivered status that an older page read does not show yet', async () => {
    // The node announces `delivered` on the receipt and commits it just after: a page
    // read in between still says `sent`, and must not undo the event.
    let page: HistoryEntry[] = [];
    const { result } = setup({ [BOB_MESSAGES]: () => json(200, page) });
    await waitFor(() => expect(result.current.loading).toBe(false));
    page = [entry(9, 'out', 'sent')];
    act(() => result.current.handleEvent({ type: 'status_changed', id: entry(9).id, to: BOB, status: 'sent' }));
    act(() => result.current.handleEvent({ type: 'status_changed', id: entry(9).id, to: BOB, status: 'delivered' }));
    await waitFor(() => expect(result.current.messages).toHaveLength(1));
    expect(result.current.messages[0]?.status).toBe('delivered');
    await act(() => result.current.refresh());
    expect(result.current.messages[0]?.status).toBe('delivered');
  });

  it('retries a failed message and marks it queued', async () => {
    const failed = entry(1, 'out', 'failed');
    const { result, calls } = setup({
      [BOB_MESSAGES]: json(200, [failed]),
      [`POST /v1/outbox/${failed.id}/retry`]: json(202, { id: failed.id, status: 'queued' }),
    });
    await waitFor(() => expect(result.current.messages).toHaveLength(1));

    await act(() => result.current.retry(failed.id));

    expect(calls.at(-1)).toMatchObject({ method: 'POST', url: `/v1/outbox/${failed.id}/retry` });
    expect(result.current.messages[0]?.status).toBe('queued');
  });

  it('starts empty when another conversation is opened', async () => {
    const { result, rerender } = setup({
      [BOB_MESSAGES]: history(2),
      [`GET /v1/conversations/${CAROL}/messages`]: json(200, []),
    });
    await waitFor(() => expect(result.current.messages).toHaveLength(2));

    rerender({ peer: CAROL });
    expect(result.current.messages).toEqual([]);
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.messages).toEqual([]);

    rerender({ peer: null });
    expect(result.current.loading).toBe(false);
  });

  it('shows a load error', async () => {
    const { result } = setup({ [BOB_MESSAGES]: apiError(500, 'storage_error', 'the database failed; see the node’s log') });
    await waitFor(() => expect(result.current.error).toBe('the database failed; see the node’s log'));
  });
});

describe('mergeNewest', () => {
  it('keeps older loaded messages when the new page overlaps them', () => {
    const loaded = [entry(1), entry(2), entry(3, 'out', 'sent')];
    const page = [entry(2), { ...entry(3, 'out'), status: 'read' as const }, entry(4)];
    const { messages, overlap } = mergeNewest(loaded, page);
    expect(overlap).toBe(true);
    expect(messages.map((m) => m.id)).toEqual([1, 2, 3, 4].map((n) => entry(n).id));
    expect(messages[2]?.status).toBe('read');
  });

  it('never moves a status backwards', () => {
    const { messages } = mergeNewest([entry(3, 'out', 'delivered')], [entry(3, 'out', 'sent')]);
    expect(messages[0]?.status).toBe('delivered');
  });

  it('replaces everything when the page does not reach what is loaded', () => {
    const { messages, overlap } = mergeNewest([entry(1)], [entry(70), entry(71)]);
    expect(overlap).toBe(false);
    expect(messages.map((m) => m.id)).toEqual([entry(70).id, entry(71).id]);
  });
});
