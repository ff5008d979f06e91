// The `/v1/events` WebSocket: parses frames, hands them to the caller, and
// reconnects with exponential backoff when the socket closes.

import { useEffect, useRef, useState } from 'react';
import { FILE_STATUSES, MESSAGE_STATUSES, PRESENCE_STATUSES, type Attachment, type ServerEvent } from '../api/types';
import { withPage } from '../api/page';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting';

export interface UseEventsOptions {
  /** Opens the socket only while true. */
  enabled?: boolean;
  onEvent: (event: ServerEvent) => void;
  /** Events may have been missed (the socket (re)opened, or the node said `lagged`):
   * refetch what is on screen. */
  onResync?: () => void;
  /** The socket closed (it reconnects by itself). A socket cannot say why, so the
   * caller may ask the node (a locked node answers 423 to any request). */
  onClose?: () => void;
  /** Defaults to `/v1/events` on this page's host. */
  url?: string;
}

/** First retry after 1 s, doubling up to 30 s. */
export function backoffMs(attempt: number): number {
  return Math.min(30_000, 1_000 * 2 ** attempt);
}

export function eventsUrl(location: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return withPage(`${scheme}//${location.host}/v1/events`);
}

/** A frame as a typed event, or null for anything this UI does not know. */
export function parseEvent(data: unknown): ServerEvent | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const e = value as Record<string, unknown>;
  switch (e.type) {
    case 'message_received':
      return typeof e.id === 'string' &&
        typeof e.from === 'string' &&
        typeof e.text === 'string' &&
        typeof e.timestamp === 'number' &&
        typeof e.position === 'number' &&
        (e.n === undefined || typeof e.n === 'number') &&
        (e.attachment === undefined || isAttachment(e.attachment))
        ? (e as ServerEvent)
        : null;
    case 'file_progress':
      return typeof e.file_id === 'string' &&
        typeof e.message_id === 'string' &&
        (e.direction === 'in' || e.direction === 'out') &&
        typeof e.bytes === 'number' &&
        typeof e.size === 'number' &&
        isFileStatus(e.status)
        ? (e as ServerEvent)
        : null;
    case 'file_preparing':
      return typeof e.bytes === 'number' && typeof e.size === 'number' ? (e as ServerEvent) : null;
    case 'status_changed':
      return typeof e.id === 'string' && typeof e.to === 'string' && (MESSAGE_STATUSES as readonly unknown[]).includes(e.status)
        ? (e as ServerEvent)
        : null;
    case 'connection':
      return typeof e.connected === 'number' ? (e as ServerEvent) : null;
    case 'presence':
      return typeof e.address === 'string' &&
        (PRESENCE_STATUSES as readonly unknown[]).includes(e.status) &&
        (e.last_seen === null || typeof e.last_seen === 'number')
        ? (e as ServerEvent)
        : null;
    case 'typing':
      return typeof e.from === 'string' && typeof e.typing === 'boolean' ? (e as ServerEvent) : null;
    case 'lagged':
      return typeof e.missed === 'number' ? (e as ServerEvent) : null;
    case 'request':
      return typeof e.from === 'string' &&
        typeof e.id === 'string' &&
        typeof e.text === 'string' &&
        typeof e.timestamp === 'number' &&
        typeof e.new === 'boolean'
        ? (e as ServerEvent)
        : null;
    case 'impersonation':
      return typeof e.address === 'string' ? (e as ServerEvent) : null;
    case 'system_line':
      return typeof e.id === 'string' &&
        typeof e.peer === 'string' &&
        e.line === 'session_reset' &&
        typeof e.timestamp === 'number' &&
        typeof e.position === 'number'
        ? (e as ServerEvent)
        : null;
    case 'contact':
      return typeof e.address === 'string' && typeof e.change === 'string' ? (e as ServerEvent) : null;
    case 'profile':
      return e.name === null || typeof e.name === 'string' ? (e as ServerEvent) : null;
    case 'read':
      return typeof e.peer === 'string' && typeof e.count === 'number' ? (e as ServerEvent) : null;
    case 'locked':
      return { type: 'locked' };
    default:
      return null; // A newer node's event: ignore it.
  }
}

function isFileStatus(value: unknown): boolean {
  return (FILE_STATUSES as readonly unknown[]).includes(value);
}

/** The fields the UI relies on; anything else an attachment carries is optional. */
export function isAttachment(value: unknown): value is Attachment {
  if (typeof value !== 'object' || value === null) return false;
  const a = value as Record<string, unknown>;
  return (
    typeof a.file_id === 'string' &&
    typeof a.name === 'string' &&
    typeof a.size === 'number' &&
    typeof a.progress === 'number' &&
    isFileStatus(a.status)
  );
}

export function useEvents({ enabled = true, onEvent, onResync, onClose, url }: UseEventsOptions): ConnectionState {
  const [state, setState] = useState<ConnectionState>('connecting');
  // The socket outlives renders; it calls whatever handlers are current.
  const handlers = useRef({ onEvent, onResync, onClose });
  useEffect(() => {
    handlers.current = { onEvent, onResync, onClose };
  });

  useEffect(() => {
    if (!enabled) return;
    let socket: WebSocket | null = null;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let stopped = false;

    const connect = () => {
      const ws = new WebSocket(url ?? eventsUrl());
      socket = ws;
      ws.onopen = () => {
        attempt = 0;
        setState('open');
        // Whatever happened between the last fetch and now was not streamed to us.
        handlers.current.onResync?.();
      };
      ws.onmessage = (message: MessageEvent) => {
        const event = parseEvent(message.data);
        if (!event) return;
        if (event.type === 'lagged') handlers.current.onResync?.();
        handlers.current.onEvent(event);
      };
      // `error` is always followed by `close`; reconnecting happens there.
      ws.onclose = () => {
        if (stopped) return;
        socket = null;
        setState('reconnecting');
        handlers.current.onClose?.();
        retryTimer = setTimeout(connect, backoffMs(attempt));
        attempt += 1;
      };
    };

    connect();
    return () => {
      stopped = true;
      clearTimeout(retryTimer);
      if (socket) {
        socket.onclose = null;
        socket.onmessage = null;
        socket.close();
      }
    };
  }, [enabled, url]);

  return state;
}
