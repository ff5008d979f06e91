// Unread counts: incoming messages for conversations that are not open. Kept in
// memory only; the node has no read state for incoming messages yet.

import { useCallback, useEffect, useRef, useState } from 'react';
import type { Address, ServerEvent } from '../api/types';

export function useUnread(open: Address | null) {
  // A key stays (at 0) once seen, so senders who are not contacts keep their entry.
  const [counts, setCounts] = useState<Record<Address, number>>({});
  const openRef = useRef(open);

  useEffect(() => {
    openRef.current = open;
    if (open) setCounts((c) => (c[open] ? { ...c, [open]: 0 } : c));
  }, [open]);

  const handleEvent = useCallback((event: ServerEvent) => {
    if (event.type !== 'message_received' || event.from === openRef.current) return;
    setCounts((c) => ({ ...c, [event.from]: (c[event.from] ?? 0) + 1 }));
  }, []);

  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  return { counts, total, handleEvent };
}
