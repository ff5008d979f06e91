// A labelled switch in the sidebar's settings, with its hint and, if saving failed,
// the reason. Busy while a change is being made.

import { useId } from 'react';

interface Props {
  label: string;
  checked: boolean;
  disabled: boolean;
  busy: boolean;
  hint: string;
  /** Shown as a hint in the warning colour (a state the user must act on). */
  warning?: boolean;
  error?: string | null;
  onChange: (checked: boolean) => void;
}

export function SettingSwitch({ label, checked, disabled, busy, hint, warning, error, onChange }: Props) {
  const hintId = useId();
  const errorId = useId();
  return (
    <div className="setting">
      <label className="setting-label">
        <input
          type="checkbox"
          role="switch"
          checked={checked}
          disabled={disabled}
          aria-busy={busy || undefined}
          aria-describedby={error ? `${hintId} ${errorId}` : hintId}
          onChange={(e) => onChange(e.target.checked)}
        />
        <span>{label}</span>
      </label>
      <p id={hintId} className={warning ? 'hint hint-warning' : 'hint'}>
        {hint}
      </p>
      {error && (
        <p id={errorId} role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
