// Message requests and the block list (issue 15): strangers who wrote, what the user
// decides about them, and the warnings when someone imitates a contact's address.

import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Address, Block, MessageRequest, ServerEvent } from '../api/types';

export function useRequests(onAccepted?: () => void) {
  const api = useApi();
  const [requests, setRequests] = useState<MessageRequest[]>([]);
  const [blocks, setBlocks] = useState<Block[]>([]);
  const [error, setError] = useState<string | null>(null);
  /** Addresses someone imitated (other keys claimed them and were refused). */
  const [imitated, setImitated] = useState<Address[]>([]);

  const refresh = useCallback(async () => {
    try {
      const [list, blocked] = await Promise.all([api.requests(), api.blocks()]);
      setRequests(list);
      setBlocks(blocked);
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const handleEvent = useCallback(
    (event: ServerEvent) => {
      if (event.type === 'request') void refresh();
      if (event.type === 'impersonation') {
        const address = event.address;
        setImitated((list) => (list.includes(address) ? list : [...list, address]));
      }
    },
    [refresh],
  );

  const accept = useCallback(
    async (address: Address) => {
      await api.acceptRequest(address);
      setRequests((list) => list.filter((r) => r.address !== address));
      onAccepted?.();
    },
    [api, onAccepted],
  );

  const decline = useCallback(
    async (address: Address, block: boolean) => {
      await api.declineRequest(address, block);
      setRequests((list) => list.filter((r) => r.address !== address));
      if (block) void refresh();
    },
    [api, refresh],
  );

  const block = useCallback(
    async (address: Address) => {
      await api.block(address);
      await refresh();
    },
    [api, refresh],
  );

  const unblock = useCallback(
    async (address: Address) => {
      await api.unblock(address);
      setBlocks((list) => list.filter((b) => b.address !== address));
    },
    [api],
  );

  const dismissWarning = useCallback((address: Address) => {
    setImitated((list) => list.filter((a) => a !== address));
  }, []);

  return { requests, blocks, error, imitated, refresh, handleEvent, accept, decline, block, unblock, dismissWarning };
}

export type RequestsState = ReturnType<typeof useRequests>;
