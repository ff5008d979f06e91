// Marks the open conversation read (issue 6) while the user can see it: when it has
// incoming messages not read yet (on opening, or as they arrive) and the window is
// active, one `POST /v1/conversations/{peer}/read` per batch, after a short pause so
// a burst of messages makes one request. The node sends the read receipt, unless
// the user turned them off. Best effort: a failure is retried only once more
// messages arrive or the window comes back.

import { useEffect, useRef } from 'react';
import { useApi } from '../api/session';
import type { Address, HistoryEntry, MessageId, MessageStatus } from '../api/types';

/** Messages arriving within this many ms are marked read together. */
export const READ_DEBOUNCE_MS = 400;

interface Options {
  /** The open conversation. */
  peer: Address | null;
  /** Its loaded messages. */
  messages: HistoryEntry[];
  /** The window is visible and focused. */
  active: boolean;
  /** Records a status (the read messages become `read`). */
  markStatus: (id: MessageId, status: MessageStatus) => void;
}

/** Incoming messages not read yet. */
export function unreadIncoming(messages: HistoryEntry[]): MessageId[] {
  return messages.filter((m) => m.direction === 'in' && m.status !== 'read').map((m) => m.id);
}

export function useMarkRead({ peer, messages, active, markStatus }: Options) {
  const api = useApi();
  const mark = useRef(markStatus);
  useEffect(() => {
    mark.current = markStatus;
  });
  const unread = unreadIncoming(messages);
  // A string, so that a new array with the same messages does not restart the wait.
  const key = unread.join(',');

  useEffect(() => {
    if (!peer || !active || key === '') return;
    const ids = key.split(',');
    const timer = setTimeout(() => {
      api.markRead(peer).then(
        () => {
          for (const id of ids) mark.current(id, 'read');
        },
        () => {
          // Not a contact (yet), or the node is away: try again with the next batch.
        },
      );
    }, READ_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [api, peer, active, key]);
}
