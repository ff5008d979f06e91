// This node's status: its own address and how many peers it is connected to.

import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { NodeStatus, ServerEvent } from '../api/types';

export function useStatus() {
  const api = useApi();
  const [status, setStatus] = useState<NodeStatus | null>(null);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      setStatus(await api.status());
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const handleEvent = useCallback((event: ServerEvent) => {
    if (event.type === 'connection') {
      setStatus((s) => (s ? { ...s, connected_peers: event.connected } : s));
    }
  }, []);

  return { status, error, refresh, handleEvent };
}
