// The unlock screen: the node's keys are locked until the passphrase is given
// (`POST /v1/unlock`, about a second).

import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { ApiError, errorMessage } from '../api/client';

interface Props {
  /** Rejects with the API's error; resolves once the messenger takes over. */
  onUnlock: (passphrase: string) => Promise<void>;
  /** The node says there is nothing to unlock here (already unlocked, or no identity). */
  onStale: () => void;
}

export function Unlock({ onUnlock, onStale }: Props) {
  const id = useId();
  const field = useRef<HTMLInputElement>(null);
  const [passphrase, setPassphrase] = useState('');
  const [shown, setShown] = useState(false);
  const [busy, setBusy] = useState(false);
  // A new object per failure, so focus returns to the field each time.
  const [error, setError] = useState<{ message: string } | null>(null);

  useEffect(() => {
    if (error) field.current?.focus();
  }, [error]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (!passphrase) {
      setError({ message: 'Enter your passphrase.' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onUnlock(passphrase);
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && (err.code === 'already_unlocked' || err.code === 'no_identity')) {
        onStale();
        return;
      }
      if (err instanceof ApiError && err.code === 'wrong_passphrase') {
        setPassphrase('');
        setError({ message: 'Wrong passphrase' });
      } else {
        setError({ message: errorMessage(err) });
      }
    }
  };

  return (
    <main className="signed-out" aria-labelledby={`${id}-title`}>
      <div className="signed-out-card">
        <h1 id={`${id}-title`}>Unlock Communitas</h1>
        <p>Your keys are locked. Enter your passphrase to start your node.</p>
        <form className="form" onSubmit={(e) => void submit(e)} noValidate aria-busy={busy}>
          <label htmlFor={`${id}-passphrase`}>Passphrase</label>
          <input
            id={`${id}-passphrase`}
            ref={field}
            type={shown ? 'text' : 'password'}
            autoComplete="current-password"
            autoFocus
            value={passphrase}
            onChange={(e) => setPassphrase(e.target.value)}
            aria-invalid={error !== null}
            aria-describedby={error ? `${id}-error` : undefined}
          />
          <label className="setting-label">
            <input type="checkbox" checked={shown} onChange={(e) => setShown(e.target.checked)} />
            Show passphrase
          </label>
          {error && (
            <p id={`${id}-error`} role="alert" className="error">
              {error.message}
            </p>
          )}
          <div className="dialog-actions">
            <button type="submit" className="button primary" disabled={busy} aria-busy={busy}>
              {busy ? 'Unlocking…' : 'Unlock'}
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
