// "Send read receipts": a switch over `/v1/settings`. While the change is saved the
// switch is busy; a failure puts it back and says why.

import type { SettingsState } from '../hooks/useSettings';
import { SettingSwitch } from './SettingSwitch';

export function ReadReceiptsToggle({ settings, saving, error, update }: SettingsState) {
  return (
    <SettingSwitch
      label="Send read receipts"
      checked={settings?.read_receipts ?? false}
      disabled={settings === null || saving}
      busy={saving}
      hint={settings === null && !error ? 'Loading…' : 'Contacts see when you have read their messages.'}
      error={error}
      onChange={(on) => void update({ read_receipts: on })}
    />
  );
}
