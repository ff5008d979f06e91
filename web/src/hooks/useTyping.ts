// Tells the contact we are typing (issue 6), without a request per key: `typing:
// true` at most once every RENEW_MS while the text keeps changing (the other side
// shows it ~6 s unless renewed), and `typing: false` once the box is emptied, the
// message is sent (the box empties), the user pauses for IDLE_MS, or the
// conversation closes. Best effort: failures are ignored.

import { useCallback, useEffect, useRef } from 'react';
import { useApi } from '../api/session';
import type { Address } from '../api/types';

/** At most one `typing: true` per this many ms. */
export const RENEW_MS = 3_000;
/** No change for this long: `typing: false`. */
export const IDLE_MS = 5_000;

export function useTyping(peer: Address | null) {
  const api = useApi();
  // When we last said `typing: true` (null: we have not, or said `false` since).
  const since = useRef<number | null>(null);
  const idle = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const last = useRef('');

  const say = useCallback(
    (to: Address, typing: boolean) => {
      api.typing(to, typing).catch(() => {
        // Best effort: the indicator is a nicety and expires on its own.
      });
    },
    [api],
  );

  const stop = useCallback(() => {
    clearTimeout(idle.current);
    idle.current = undefined;
    if (since.current !== null && peer) say(peer, false);
    since.current = null;
  }, [peer, say]);

  /** The composer's text is now `text`. */
  const update = useCallback(
    (text: string) => {
      const changed = text !== last.current;
      last.current = text;
      if (!peer || !changed) return;
      if (text.trim() === '') {
        stop();
        return;
      }
      const now = Date.now();
      if (since.current === null || now - since.current >= RENEW_MS) {
        since.current = now;
        say(peer, true);
      }
      clearTimeout(idle.current);
      idle.current = setTimeout(stop, IDLE_MS);
    },
    [peer, say, stop],
  );

  // Leaving the conversation (or another one opening) stops the indicator there.
  useEffect(
    () => () => {
      stop();
      last.current = '';
    },
    [stop],
  );

  return { update, stop };
}
