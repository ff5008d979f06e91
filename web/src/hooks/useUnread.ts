// Unread counts: incoming messages the user has not seen — for conversations that
// are not open, or for the open one while the window is hidden or unfocused. Kept
// in memory; the open conversation is marked read on the node (`useMarkRead`) under
// the same condition that clears its count here.

import { useCallback, useEffect, useRef, useState } from 'react';
import type { Address, ServerEvent } from '../api/types';

export function useUnread(open: Address | null, active = true) {
  // A key stays (at 0) once seen, so senders who are not contacts keep their entry.
  const [counts, setCounts] = useState<Record<Address, number>>({});
  const seen = useRef<Address | null>(active ? open : null);

  useEffect(() => {
    // The conversation the user sees now.
    const visible = active ? open : null;
    seen.current = visible;
    if (visible) setCounts((c) => (c[visible] ? { ...c, [visible]: 0 } : c));
  }, [open, active]);

  const handleEvent = useCallback((event: ServerEvent) => {
    if (event.type !== 'message_received' || event.from === seen.current) return;
    setCounts((c) => ({ ...c, [event.from]: (c[event.from] ?? 0) + 1 }));
  }, []);

  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  return { counts, total, handleEvent };
}
