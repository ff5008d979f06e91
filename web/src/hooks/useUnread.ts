// Unread counts: incoming messages the user has not seen — for conversations that
// are not open, or for the open one while the window is hidden or unfocused.
//
// The node's read state is the truth: a `read` event (a conversation read on this
// node from any client) clears its count, and `load` reads the counts from
// `GET /v1/conversations` (on start, and on every resync after the event stream
// reconnects), and `message_received` events add to them in between. The open
// conversation is marked read on the node (`useMarkRead`) under the same condition
// that clears its count here.
//
// It also keeps when each conversation last moved (the newest message either way),
// from the same answer and the same events, for the contact list's order.
//
// The race: a message that arrives while the counts are being read may or may not
// be in the node's answer, and nothing in the answer says which. So an answer that
// raced with a `message_received` is thrown away and the counts are read again;
// events keep counting live meanwhile, so the badge never lags.

import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '../api/session';
import type { Address, ServerEvent } from '../api/types';

/** Reads of the counts per `load` before one that raced with a new message is
 * taken as it is (a message every few milliseconds for this long is a flood; the
 * next resync corrects any miscount). */
export const MAX_READS = 5;

/** The start of a conversation's newest message, as the contact list shows it. */
export interface LastMessage {
  text: string;
  /** We wrote it. */
  out: boolean;
}

export function useUnread(open: Address | null, active = true) {
  const api = useApi();
  // A key stays (at 0) once seen, so senders who are not contacts keep their entry.
  const [counts, setCounts] = useState<Record<Address, number>>({});
  // Unix ms of each conversation's newest message, as far as this page knows.
  const [recent, setRecent] = useState<Record<Address, number>>({});
  // The start of each conversation's newest message (issue 23 item 8).
  const [last, setLast] = useState<Record<Address, LastMessage>>({});
  const seen = useRef<Address | null>(active ? open : null);
  // The read in flight: whether a message arrived during it, and whether another
  // `load` was asked for meanwhile.
  const reading = useRef<{ raced: boolean; again: boolean } | null>(null);

  useEffect(() => {
    // The conversation the user sees now.
    const visible = active ? open : null;
    seen.current = visible;
    if (visible) setCounts((c) => (c[visible] ? { ...c, [visible]: 0 } : c));
  }, [open, active]);

  const handleEvent = useCallback((event: ServerEvent) => {
    if (event.type === 'status_changed' && event.status === 'queued') {
      setRecent((r) => ({ ...r, [event.to]: Math.max(r[event.to] ?? 0, Date.now()) }));
    }
    // Read on this node, perhaps in another browser or from the CLI (issue 23 item 5).
    if (event.type === 'read') {
      setCounts((c) => (c[event.peer] ? { ...c, [event.peer]: 0 } : c));
      return;
    }
    if (event.type !== 'message_received') return;
    setRecent((r) => ({ ...r, [event.from]: Math.max(r[event.from] ?? 0, event.timestamp) }));
    const text = event.text || event.attachment?.name || '';
    setLast((l) => ({ ...l, [event.from]: { text, out: false } }));
    if (reading.current) reading.current.raced = true;
    if (event.from === seen.current) return;
    setCounts((c) => ({ ...c, [event.from]: (c[event.from] ?? 0) + 1 }));
  }, []);

  /** Reads the counts from the node. Calls made while one runs fold into one more
   * read. Best effort: on failure the live counts stay. */
  const load = useCallback(async () => {
    if (reading.current) {
      reading.current.again = true;
      return;
    }
    const mine = { raced: false, again: false };
    reading.current = mine;
    try {
      for (let reads = 1; ; reads += 1) {
        mine.raced = false;
        mine.again = false;
        const list = await api.conversations();
        if ((mine.raced || mine.again) && reads < MAX_READS) continue;
        setCounts((c) => {
          const next: Record<Address, number> = {};
          for (const peer of Object.keys(c)) next[peer] = 0;
          for (const { peer, unread } of list) next[peer] = peer === seen.current ? 0 : unread;
          return next;
        });
        setRecent((r) => {
          const next = { ...r };
          for (const { peer, last_at } of list) next[peer] = Math.max(next[peer] ?? 0, last_at);
          return next;
        });
        setLast((l) => {
          const next = { ...l };
          for (const { peer, last_text, last_direction } of list) {
            if (last_text !== null && last_text !== undefined) next[peer] = { text: last_text, out: last_direction === 'out' };
          }
          return next;
        });
        break;
      }
    } catch {
      // An older node without the route, or the node is away: keep counting live.
    } finally {
      reading.current = null;
    }
  }, [api]);

  useEffect(() => {
    void load();
  }, [load]);

  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  return { counts, recent, last, total, handleEvent, load };
}
