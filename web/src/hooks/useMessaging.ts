// One conversation: its history page by page, sending, retrying, and live updates.
// (Files are sent by `useUploads`, which hands each queued file back here.)
//
// Modelled on the seed's `useMessaging` hook, over the HTTP API: history is paged
// with `before` (the oldest loaded id), new messages and status changes arrive through
// `handleEvent` (fed from `useEvents`), and `refresh` re-reads the newest page after
// events may have been missed.

import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Address, FileQueued, HistoryEntry, MessageId, MessageStatus, ServerEvent } from '../api/types';
import { placeIn, sortByPosition, UNKNOWN_POSITION } from '../lib/order';

/** Messages per request. */
export const PAGE_SIZE = 50;

interface Conversation {
  peer: Address | null;
  messages: HistoryEntry[];
  /** The newest page is being loaded (first load only). */
  loading: boolean;
  loadingOlder: boolean;
  /** Older messages may exist on the node. */
  hasMore: boolean;
  error: string | null;
}

function empty(peer: Address | null): Conversation {
  return { peer, messages: [], loading: peer !== null, loadingOlder: false, hasMore: false, error: null };
}

/** How far along a message is. Statuses only move forward on their own: the node
 * announces `delivered` the moment the receipt arrives and writes it a moment later,
 * so a page read in between may still say `sent` — it must not undo what an event
 * already told us. (`failed` goes back to `queued` only through an explicit retry.) */
const RANK: Record<MessageStatus, number> = { queued: 0, sent: 1, stored: 2, failed: 3, delivered: 4, read: 5 };

/** The further along of two statuses. */
export function furthest(a: MessageStatus, b: MessageStatus | undefined): MessageStatus {
  return b !== undefined && RANK[b] > RANK[a] ? b : a;
}

/** Joins a freshly read newest page onto what is loaded: older messages are kept
 * when the page overlaps them, and the page wins for everything it holds — except
 * that a status never moves backwards. */
export function mergeNewest(loaded: HistoryEntry[], page: HistoryEntry[]): { messages: HistoryEntry[]; overlap: boolean } {
  const known = new Map(loaded.map((m) => [m.id, m.status]));
  page = page.map((m) => {
    const status = furthest(m.status, known.get(m.id));
    return status === m.status ? m : { ...m, status };
  });
  const first = page[0];
  if (!first) return { messages: loaded.length ? loaded : page, overlap: true };
  const at = loaded.findIndex((m) => m.id === first.id);
  if (at < 0) return { messages: page, overlap: false };
  const ids = new Set(page.map((m) => m.id));
  // Messages appended locally while the page was in flight are kept, in their place.
  const tail = loaded.slice(at).filter((m) => !ids.has(m.id));
  return { messages: sortByPosition([...loaded.slice(0, at), ...page, ...tail]), overlap: true };
}

export function useMessaging(peer: Address | null, me: Address | null) {
  const api = useApi();
  const [stored, setState] = useState<Conversation>(() => empty(peer));
  // Another conversation was opened: start it empty in this very render, so the old
  // one's messages never show under the new name.
  let state = stored;
  if (stored.peer !== peer) {
    state = empty(peer);
    setState(state);
  }
  const current = useRef(state);
  useLayoutEffect(() => {
    current.current = state;
  });
  const olderInFlight = useRef(false);
  // Statuses announced for messages not loaded yet (an event can beat the POST's
  // answer or the page that holds the message); applied when the message shows up.
  const heard = useRef(new Map<MessageId, MessageStatus>());
  const withHeard = useCallback((messages: HistoryEntry[]) => {
    if (heard.current.size === 0) return messages;
    return messages.map((m) => {
      const status = furthest(m.status, heard.current.get(m.id));
      return status === m.status ? m : { ...m, status };
    });
  }, []);
  const refreshing = useRef<{ peer: Address; again: boolean } | null>(null);
  // Messages that arrived while this conversation was open: only they can show that
  // earlier ones are still on their way (a gap read from history is old news).
  const fresh = useRef(new Set<MessageId>());

  useEffect(() => {
    olderInFlight.current = false;
    fresh.current = new Set();
    if (!peer) return;
    let cancelled = false;
    api.history(peer, { limit: PAGE_SIZE }).then(
      (page) => {
        if (cancelled) return;
        setState((s) => {
          if (s.peer !== peer) return s;
          // A refresh may have landed first; merging keeps what it added.
          const { messages } = mergeNewest(s.messages, page);
          return { ...s, messages: withHeard(messages), loading: false, hasMore: page.length === PAGE_SIZE };
        });
      },
      (error: unknown) => {
        if (cancelled) return;
        setState((s) => (s.peer === peer ? { ...s, loading: false, error: errorMessage(error) } : s));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [api, peer]);

  const loadOlder = useCallback(async () => {
    const s = current.current;
    const oldest = s.messages[0];
    if (!peer || s.peer !== peer || !oldest || !s.hasMore || s.loading || olderInFlight.current) return;
    olderInFlight.current = true;
    setState((c) => ({ ...c, loadingOlder: true }));
    try {
      const page = await api.history(peer, { limit: PAGE_SIZE, before: oldest.id });
      setState((c) => {
        if (c.peer !== peer) return c;
        const known = new Set(c.messages.map((m) => m.id));
        return {
          ...c,
          loadingOlder: false,
          hasMore: page.length === PAGE_SIZE,
          messages: sortByPosition([...page.filter((m) => !known.has(m.id)), ...c.messages]),
        };
      });
    } catch (error) {
      setState((c) => (c.peer === peer ? { ...c, loadingOlder: false, error: errorMessage(error) } : c));
    } finally {
      olderInFlight.current = false;
    }
  }, [api, peer]);

  /** Re-reads the newest page. Calls made while one runs fold into one more read. */
  const refresh = useCallback(async () => {
    if (!peer) return;
    if (refreshing.current?.peer === peer) {
      refreshing.current.again = true;
      return;
    }
    const mine = { peer, again: false };
    refreshing.current = mine;
    try {
      for (;;) {
        const page = await api.history(peer, { limit: PAGE_SIZE });
        setState((c) => {
          if (c.peer !== peer) return c;
          const { messages, overlap } = mergeNewest(c.messages, page);
          const hasMore = overlap ? c.hasMore : page.length === PAGE_SIZE;
          return { ...c, messages: withHeard(messages), hasMore, loading: false, error: null };
        });
        if (!mine.again || refreshing.current !== mine) break;
        mine.again = false;
      }
    } catch (error) {
      setState((c) => (c.peer === peer ? { ...c, error: errorMessage(error) } : c));
    } finally {
      if (refreshing.current === mine) refreshing.current = null;
    }
  }, [api, peer]);

  const append = useCallback((entry: HistoryEntry) => {
    setState((c) => {
      if (c.peer !== peer || c.messages.some((m) => m.id === entry.id)) return c;
      const [placed = entry] = withHeard([entry]);
      return { ...c, messages: placeIn(c.messages, placed) };
    });
  }, [peer, withHeard]);

  /** Records a status; it only moves forward unless `force` (a retry). */
  const markStatus = useCallback((id: MessageId, status: MessageStatus, force = false) => {
    heard.current.set(id, force ? status : furthest(status, heard.current.get(id)));
    setState((c) => {
      const next = (m: HistoryEntry) => (force ? status : furthest(m.status, status));
      if (!c.messages.some((m) => m.id === id && next(m) !== m.status)) return c;
      return { ...c, messages: c.messages.map((m) => (m.id === id ? { ...m, status: next(m) } : m)) };
    });
  }, []);

  /** Sends `text`; rejects with the API's error so the composer can show it. */
  const send = useCallback(
    async (text: string) => {
      if (!peer) return;
      const queued = await api.send(peer, text);
      append({
        id: queued.id,
        from: me ?? '',
        to: peer,
        direction: 'out',
        text,
        timestamp: Date.now(),
        status: queued.status,
        position: queued.position ?? UNKNOWN_POSITION,
      });
    },
    [api, peer, me, append],
  );

  /** Shows a file the node has just queued for `to` (an upload of `useUploads`
   * finished), if that conversation is open; otherwise its history will hold it. */
  const showSentFile = useCallback(
    ({ peer: to, file, caption }: { peer: Address; file: File; caption: string }, queued: FileQueued) => {
      if (to !== peer) return;
      append({
        id: queued.id,
        from: me ?? '',
        to,
        direction: 'out',
        text: caption,
        timestamp: Date.now(),
        status: queued.status,
        position: queued.position ?? UNKNOWN_POSITION,
        attachment: {
          file_id: queued.file_id,
          name: file.name,
          size: file.size,
          blake3: '',
          media_type: file.type || 'application/octet-stream',
          status: 'offered',
          progress: file.size,
        },
      });
    },
    [peer, me, append],
  );

  /** Puts a failed message back in the outbox. */
  const retry = useCallback(
    async (id: MessageId) => {
      const queued = await api.retry(id);
      markStatus(id, queued.status, true);
    },
    [api, markStatus],
  );

  const handleEvent = useCallback(
    (event: ServerEvent) => {
      if (!peer) return;
      if (event.type === 'message_received' && event.from === peer) {
        fresh.current.add(event.id);
        append({
          id: event.id,
          from: event.from,
          to: me ?? '',
          direction: 'in',
          text: event.text,
          timestamp: event.timestamp,
          status: 'delivered',
          position: event.position,
          ...(event.n === undefined ? {} : { n: event.n }),
          ...(event.attachment ? { attachment: event.attachment } : {}),
        });
      } else if (event.type === 'system_line' && event.peer === peer) {
        append({
          id: event.id,
          from: event.peer,
          to: me ?? '',
          direction: 'in',
          text: '',
          system: event.line,
          timestamp: event.timestamp,
          status: 'read',
          position: event.position,
        });
      } else if (event.type === 'status_changed') {
        if (current.current.messages.some((m) => m.id === event.id)) {
          markStatus(event.id, event.status);
        } else if (event.to === peer) {
          // Sent from elsewhere (the CLI), or before our send() returned: remember
          // the status and read the page.
          heard.current.set(event.id, furthest(event.status, heard.current.get(event.id)));
          void refresh();
        }
      }
    },
    [peer, me, append, markStatus, refresh],
  );

  return {
    messages: state.messages,
    fresh: fresh.current,
    loading: state.loading,
    loadingOlder: state.loadingOlder,
    hasMore: state.hasMore,
    error: state.error,
    loadOlder,
    refresh,
    send,
    showSentFile,
    retry,
    markStatus,
    handleEvent,
  };
}

export type Messaging = ReturnType<typeof useMessaging>;
