import { act, renderHook } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffMs, eventsUrl, parseEvent, useEvents } from '../src/hooks/useEvents';
import { BOB, MockWebSocket } from './helpers';

beforeEach(() => MockWebSocket.install());
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('useEvents', () => {
  it('opens /v1/events on this host with ws or wss', () => {
    expect(eventsUrl({ protocol: 'http:', host: '127.0.0.1:7070' })).toBe('ws://127.0.0.1:7070/v1/events');
    expect(eventsUrl({ protocol: 'https:', host: 'example.test' })).toBe('wss://example.test/v1/events');

    renderHook(() => useEvents({ onEvent: vi.fn() }));
    expect(MockWebSocket.latest().url).toBe(`ws://${window.location.host}/v1/events`);
  });

  it('hands parsed events to the latest handler and ignores what it does not know', () => {
    const first = vi.fn();
    const second = vi.fn();
    const { result, rerender } = renderHook(({ onEvent }) => useEvents({ onEvent }), { initialProps: { onEvent: first } });
    const ws = MockWebSocket.latest();
    act(() => ws.open());
    expect(result.current).toBe('open');

    rerender({ onEvent: second });
    const event = { type: 'message_received', id: 'a'.repeat(32), from: BOB, text: 'hi', timestamp: 1, position: 1e15 };
    act(() => {
      ws.receive(event);
      ws.receive('not json');
      ws.receive({ type: 'presence_changed', peer: BOB }); // from a newer node
      ws.receive({ type: 'status_changed', id: 'b'.repeat(32), to: BOB, status: 'bogus' });
    });

    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledExactlyOnceWith(event);
    // The socket was not reopened for the new handler.
    expect(MockWebSocket.instances).toHaveLength(1);
  });

  it('asks for a resync when the socket opens and when the node says it lagged', () => {
    const onEvent = vi.fn();
    const onResync = vi.fn();
    renderHook(() => useEvents({ onEvent, onResync }));
    const ws = MockWebSocket.latest();

    act(() => ws.open());
    expect(onResync).toHaveBeenCalledTimes(1);

    act(() => ws.receive({ type: 'lagged', missed: 12 }));
    expect(onResync).toHaveBeenCalledTimes(2);
    expect(onEvent).toHaveBeenCalledWith({ type: 'lagged', missed: 12 });
  });

  it('reconnects with growing backoff after the socket closes', () => {
    vi.useFakeTimers();
    const onResync = vi.fn();
    const onClose = vi.fn();
    const { result } = renderHook(() => useEvents({ onEvent: vi.fn(), onResync, onClose }));
    act(() => MockWebSocket.latest().open());

    act(() => MockWebSocket.latest().drop());
    expect(result.current).toBe('reconnecting');
    // The caller hears of each close, to ask the node why (locked?).
    expect(onClose).toHaveBeenCalledTimes(1);
    act(() => vi.advanceTimersByTime(backoffMs(0) - 1));
    expect(MockWebSocket.instances).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1));
    expect(MockWebSocket.instances).toHaveLength(2);

    // Fails again before opening: the next wait is longer.
    act(() => MockWebSocket.latest().drop());
    act(() => vi.advanceTimersByTime(backoffMs(0)));
    expect(MockWebSocket.instances).toHaveLength(2);
    act(() => vi.advanceTimersByTime(backoffMs(1) - backoffMs(0)));
    expect(MockWebSocket.instances).toHaveLength(3);

    act(() => MockWebSocket.latest().open());
    expect(result.current).toBe('open');
    expect(onResync).toHaveBeenCalledTimes(2);
    expect(backoffMs(20)).toBe(30_000);
  });

  it('closes the socket and stops reconnecting on unmount, and opens none while disabled', () => {
    vi.useFakeTimers();
    const { unmount } = renderHook(() => useEvents({ onEvent: vi.fn() }));
    const ws = MockWebSocket.latest();
    unmount();
    expect(ws.closedByClient).toBe(true);
    act(() => vi.advanceTimersByTime(60_000));
    expect(MockWebSocket.instances).toHaveLength(1);

    renderHook(() => useEvents({ onEvent: vi.fn(), enabled: false }));
    expect(MockWebSocket.instances).toHaveLength(1);
  });
});

describe('parseEvent', () => {
  it('accepts the four event types of the API', () => {
    expect(parseEvent(JSON.stringify({ type: 'connection', peer: 'p', open: true, connected: 3 }))).toMatchObject({ connected: 3 });
    expect(parseEvent(JSON.stringify({ type: 'status_changed', id: 'x', to: BOB, status: 'read' }))).toMatchObject({ status: 'read' });
    expect(parseEvent(JSON.stringify({ type: 'message_received', id: 'x', from: BOB, text: 't' }))).toBeNull();
    expect(parseEvent(new ArrayBuffer(2))).toBeNull();
  });
});
