// Under the sidebar's header: your display name, "Lock" (stop the node and drop
// its keys) and "Sign out" (end this browser's session).

import { useState } from 'react';
import { errorMessage } from '../api/client';
import { useSession } from '../api/session';
import { LockIcon } from './icons';

export function AccountActions() {
  const session = useSession();
  const name = session.gate.kind === 'unlocked' ? session.gate.identity.name : null;
  const [busy, setBusy] = useState<'lock' | 'logout' | null>(null);
  const [error, setError] = useState<string | null>(null);

  // On success this component is gone (another screen takes over).
  const run = async (action: 'lock' | 'logout') => {
    setBusy(action);
    setError(null);
    try {
      await (action === 'lock' ? session.lock() : session.logout());
    } catch (e) {
      setError(errorMessage(e));
      setBusy(null);
    }
  };

  return (
    <div className="account">
      {name && (
        <p className="account-name" title="Your display name, published with your address">
          <span className="sr-only">Your display name: </span>
          {name}
        </p>
      )}
      <div className="account-actions">
        <button
          type="button"
          className="button"
          onClick={() => void run('lock')}
          disabled={busy !== null}
          aria-busy={busy === 'lock'}
          title="Stop your node and forget its keys until you unlock again"
        >
          <LockIcon /> {busy === 'lock' ? 'Locking…' : 'Lock'}
        </button>
        <button
          type="button"
          className="button"
          onClick={() => void run('logout')}
          disabled={busy !== null}
          aria-busy={busy === 'logout'}
          title="End this browser's session; your node keeps running"
        >
          {busy === 'logout' ? 'Signing out…' : 'Sign out'}
        </button>
      </div>
      {error && (
        <p role="alert" className="error account-error">
          {error}
        </p>
      )}
    </div>
  );
}
