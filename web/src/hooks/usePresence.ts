// Contacts' presence and typing indicators (issue 6): read once from
// `GET /v1/presence`, then kept current by `presence` and `typing` events.
// Presence is a nicety: if it cannot be read, dots stay `unknown` and no error shows.

import { useCallback, useEffect, useRef, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Address, PresenceStatus, ServerEvent } from '../api/types';
import type { Presence } from '../components/PresenceDot';

export function usePresence() {
  const api = useApi();
  const [presence, setPresence] = useState<Record<Address, Presence>>({});
  const [typing, setTyping] = useState<ReadonlySet<Address>>(new Set());
  // Our own status (issue 23 item 3): what contacts see of us.
  const [own, setOwnState] = useState<PresenceStatus | null>(null);
  const [ownError, setOwnError] = useState<string | null>(null);
  const [savingOwn, setSavingOwn] = useState(false);
  const ownRef = useRef<PresenceStatus | null>(null);
  ownRef.current = own;

  const refresh = useCallback(async () => {
    try {
      const list = await api.presence();
      setPresence(Object.fromEntries(list.contacts.map((c) => [c.address, c.status])));
      setOwnState(list.status);
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

  /** Sets our status; shown at once, put back if the node refuses it. */
  const setOwn = useCallback(
    async (status: PresenceStatus) => {
      const before = ownRef.current;
      setOwnState(status);
      setOwnError(null);
      setSavingOwn(true);
      try {
        const answer = await api.setPresence(status);
        setOwnState(answer.status);
      } catch (error) {
        setOwnState(before);
        setOwnError(errorMessage(error));
      } finally {
        setSavingOwn(false);
      }
    },
    [api],
  );

  return { presence, typing, refresh, handleEvent, own, setOwn, ownError, savingOwn };
}

function without(set: ReadonlySet<Address>, address: Address): ReadonlySet<Address> {
  if (!set.has(address)) return set;
  const next = new Set(set);
  next.delete(address);
  return next;
}
