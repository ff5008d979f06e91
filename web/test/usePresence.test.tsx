import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { parseEvent } from '../src/hooks/useEvents';
import { usePresence } from '../src/hooks/usePresence';
import { ALICE, BOB, CAROL, apiError, json, mockFetch, sessionWrapper } from './helpers';

const LIST = {
  status: 'online',
  contacts: [
    { address: BOB, status: 'away', last_seen: 1_700_000_000_000 },
    { address: CAROL, status: 'offline', last_seen: null },
  ],
};

describe('presence and typing events', () => {
  it('parses presence and typing frames and refuses malformed ones', () => {
    const presence = { type: 'presence', address: BOB, status: 'busy', last_seen: 5 };
    expect(parseEvent(JSON.stringify(presence))).toEqual(presence);
    const never = { type: 'presence', address: BOB, status: 'offline', last_seen: null };
    expect(parseEvent(JSON.stringify(never))).toEqual(never);
    const typing = { type: 'typing', from: BOB, typing: true };
    expect(parseEvent(JSON.stringify(typing))).toEqual(typing);
    for (const bad of [
      { type: 'presence', address: BOB, status: 'sleepy', last_seen: 5 },
      { type: 'presence', address: 7, status: 'online', last_seen: 5 },
      { type: 'presence', address: BOB, status: 'online', last_seen: 'yesterday' },
      { type: 'typing', from: BOB, typing: 'yes' },
      { type: 'typing', typing: true },
    ]) {
      expect(parseEvent(JSON.stringify(bad))).toBeNull();
    }
  });
});

describe('usePresence', () => {
  it('reads every contact once, then follows presence events', async () => {
    const { fetch, calls } = mockFetch({ 'GET /v1/presence': json(200, LIST) });
    const { result } = renderHook(() => usePresence(), { wrapper: sessionWrapper(fetch) });
    await waitFor(() => expect(result.current.presence).toEqual({ [BOB]: 'away', [CAROL]: 'offline' }));
    expect(calls.filter((c) => c.url === '/v1/presence')).toHaveLength(1);

    act(() => result.current.handleEvent({ type: 'presence', address: CAROL, status: 'online', last_seen: 9 }));
    act(() => result.current.handleEvent({ type: 'presence', address: ALICE, status: 'busy', last_seen: 9 }));
    expect(result.current.presence).toEqual({ [BOB]: 'away', [CAROL]: 'online', [ALICE]: 'busy' });
  });

  it('shows typing until it stops, the message arrives, or the contact goes offline', async () => {
    const { fetch } = mockFetch({ 'GET /v1/presence': json(200, LIST) });
    const { result } = renderHook(() => usePresence(), { wrapper: sessionWrapper(fetch) });
    await waitFor(() => expect(result.current.presence[BOB]).toBe('away'));

    act(() => result.current.handleEvent({ type: 'typing', from: BOB, typing: true }));
    act(() => result.current.handleEvent({ type: 'typing', from: CAROL, typing: true }));
    expect([...result.current.typing].sort()).toEqual([BOB, CAROL].sort());

    act(() => result.current.handleEvent({ type: 'typing', from: CAROL, typing: false }));
    expect(result.current.typing.has(CAROL)).toBe(false);

    act(() =>
      result.current.handleEvent({ type: 'message_received', id: 'a'.repeat(32), from: BOB, text: 'hi', timestamp: 1, position: 1e15 }),
    );
    expect(result.current.typing.has(BOB)).toBe(false);

    act(() => result.current.handleEvent({ type: 'typing', from: BOB, typing: true }));
    act(() => result.current.handleEvent({ type: 'presence', address: BOB, status: 'offline', last_seen: 2 }));
    expect(result.current.typing.size).toBe(0);
  });

  it('stays unknown, without an error, when the node has no presence to give', async () => {
    const { fetch, calls } = mockFetch({ 'GET /v1/presence': apiError(404, 'not_found', 'no such route') });
    const { result } = renderHook(() => usePresence(), { wrapper: sessionWrapper(fetch) });
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(result.current.presence).toEqual({});
  });
});
