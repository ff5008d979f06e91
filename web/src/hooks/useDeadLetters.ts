// Messages the node gave up on, re-read whenever one more fails.

import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { DeadLetter, MessageId, ServerEvent } from '../api/types';

export function useDeadLetters() {
  const api = useApi();
  const [letters, setLetters] = useState<DeadLetter[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      const list = await api.deadLetters();
      setLetters([...list].sort((a, b) => b.failed_at - a.failed_at));
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoaded(true);
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const handleEvent = useCallback(
    (event: ServerEvent) => {
      if (event.type === 'status_changed') {
        if (event.status === 'failed') void refresh();
        else setLetters((list) => (list.some((d) => d.id === event.id) ? list.filter((d) => d.id !== event.id) : list));
      }
    },
    [refresh],
  );

  /** Drops a letter that was put back in the outbox. */
  const remove = useCallback((id: MessageId) => {
    setLetters((list) => list.filter((d) => d.id !== id));
  }, []);

  return { letters, loaded, error, refresh, remove, handleEvent };
}
