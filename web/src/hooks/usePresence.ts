// Contacts' presence and typing indicators (issue 6): read once from
// `GET /v1/presence`, then kept current by `presence` and `typing` events.
// Presence is a nicety: if it cannot be read, dots stay `unknown` and no error shows.

import { useCallback, useEffect, useState } from 'react';
import { useApi } from '../api/session';
import type { Address, ServerEvent } from '../api/types';
import type { Presence } from '../components/PresenceDot';

export function usePresence() {
  const api = useApi();
  const [presence, setPresence] = useState<Record<Address, Presence>>({});
  const [typing, setTyping] = useState<ReadonlySet<Address>>(new Set());

  const refresh = useCallback(async () => {
    try {
      const list = await api.presence();
      setPresence(Object.fromEntries(list.contacts.map((c) => [c.address, c.status])));
    } catch {
      // An older node without presence, or a transient failure: stay `unknown`.
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const handleEvent = useCallback((event: ServerEvent) => {
    if (event.type === 'presence') {
      setPresence((p) => ({ ...p, [event.address]: event.status }));
      // Whoever went offline is not typing any more.
      if (event.status === 'offline') setTyping((t) => without(t, event.address));
    } else if (event.type === 'typing') {
      setTyping((t) => (event.typing ? new Set(t).add(event.from) : without(t, event.from)));
    } else if (event.type === 'message_received') {
      // The message they were typing arrived.
      setTyping((t) => without(t, event.from));
    }
  }, []);

  return { presence, typing, refresh, handleEvent };
}

function without(set: ReadonlySet<Address>, address: Address): ReadonlySet<Address> {
  if (!set.has(address)) return set;
  const next = new Set(set);
  next.delete(address);
  return next;
}
