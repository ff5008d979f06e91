// Your own presence, as your contacts see it (issue 23 item 3): online, away, busy,
// or invisible (contacts see you offline; you still send and receive).

import { useId } from 'react';
import type { PresenceStatus } from '../api/types';
import { PresenceDot } from './PresenceDot';

/** The choices, in the order offered; `offline` is shown as "Invisible". */
export const OWN_STATUSES: readonly { value: PresenceStatus; label: string }[] = [
  { value: 'online', label: 'Online' },
  { value: 'away', label: 'Away' },
  { value: 'busy', label: 'Busy' },
  { value: 'offline', label: 'Invisible' },
];

interface Props {
  status: PresenceStatus | null;
  saving: boolean;
  error: string | null;
  onChange: (status: PresenceStatus) => void;
}

export function MyStatus({ status, saving, error, onChange }: Props) {
  const id = useId();
  if (status === null) return null;
  return (
    <div className="my-status">
      <PresenceDot status={status} />
      <label htmlFor={id}>Your status</label>
      <select
        id={id}
        value={status}
        disabled={saving}
        onChange={(e) => onChange(e.target.value as PresenceStatus)}
        aria-describedby={status === 'offline' ? `${id}-hint` : undefined}
      >
        {OWN_STATUSES.map((s) => (
          <option key={s.value} value={s.value}>
            {s.label}
          </option>
        ))}
      </select>
      {status === 'offline' && (
        <p id={`${id}-hint`} className="muted small">
          Contacts see you offline; messages still come and go.
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          Could not change your status: {error}
        </p>
      )}
    </div>
  );
}
