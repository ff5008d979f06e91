// The user's settings on the node (`GET/PUT /v1/settings`): for now whether read
// receipts are sent.

import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Settings } from '../api/types';

export function useSettings() {
  const api = useApi();
  const [settings, setSettings] = useState<Settings | null>(null);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      setSettings(await api.settings());
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  /** Changes the given settings; on failure the old values stay and `error` says why. */
  const update = useCallback(
    async (changes: Partial<Settings>) => {
      setSaving(true);
      setError(null);
      try {
        setSettings(await api.updateSettings(changes));
      } catch (e) {
        setError(errorMessage(e));
      } finally {
        setSaving(false);
      }
    },
    [api],
  );

  return { settings, saving, error, refresh, update };
}

export type SettingsState = ReturnType<typeof useSettings>;
