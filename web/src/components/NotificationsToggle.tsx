// "Desktop notifications": a switch; turning it on asks the browser.

import { useState } from 'react';
import type { NotificationsState } from '../hooks/useNotifications';
import { SettingSwitch } from './SettingSwitch';

export function NotificationsToggle({ on, blocked, supported, set }: NotificationsState) {
  const [asking, setAsking] = useState(false);
  if (!supported) return null;
  const change = async (next: boolean) => {
    setAsking(true);
    try {
      await set(next);
    } finally {
      setAsking(false);
    }
  };
  return (
    <SettingSwitch
      label="Desktop notifications"
      checked={on}
      disabled={asking}
      busy={asking}
      hint={
        blocked
          ? 'Blocked by your browser: allow notifications for this page in its settings.'
          : 'When you are not looking: who wrote, never what.'
      }
      warning={blocked}
      onChange={(next) => void change(next)}
    />
  );
}
