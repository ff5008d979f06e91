// "Desktop notifications": a labelled switch; turning it on asks the browser.

import { useId, useState } from 'react';
import type { NotificationsState } from '../hooks/useNotifications';

export function NotificationsToggle({ on, blocked, supported, set }: NotificationsState) {
  const hintId = useId();
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
    <div className="setting">
      <label className="setting-label">
        <input
          type="checkbox"
          role="switch"
          checked={on}
          disabled={asking}
          aria-busy={asking || undefined}
          aria-describedby={hintId}
          onChange={(e) => void change(e.target.checked)}
        />
        <span>Desktop notifications</span>
      </label>
      <p id={hintId} className={blocked ? 'hint hint-warning' : 'hint'}>
        {blocked
          ? 'Blocked by your browser: allow notifications for this page in its settings.'
          : 'When you are not looking: who wrote, never what.'}
      </p>
    </div>
  );
}
