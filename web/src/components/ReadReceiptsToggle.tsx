// "Send read receipts": a labelled switch over `/v1/settings`. While the change is
// saved the switch is busy; a failure puts it back and says why.

import { useId } from 'react';
import type { SettingsState } from '../hooks/useSettings';

export function ReadReceiptsToggle({ settings, saving, error, update }: SettingsState) {
  const hintId = useId();
  const errorId = useId();
  const on = settings?.read_receipts ?? false;
  return (
    <div className="setting">
      <label className="setting-label">
        <input
          type="checkbox"
          role="switch"
          checked={on}
          disabled={settings === null || saving}
          aria-busy={saving || undefined}
          aria-describedby={error ? `${hintId} ${errorId}` : hintId}
          onChange={(e) => void update({ read_receipts: e.target.checked })}
        />
        <span>Send read receipts</span>
      </label>
      <p id={hintId} className="hint">
        {settings === null && !error
          ? 'Loading…'
          : 'Contacts see when you have read their messages.'}
      </p>
      {error && (
        <p id={errorId} role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
