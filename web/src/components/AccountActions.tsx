// Under the sidebar's header: your display name, "Lock" (stop the node and drop
// its keys), "Change passphrase" (a dialog) and "Sign out" (end this browser's
// session).

import { useState } from 'react';
import { errorMessage } from '../api/client';
import { useSession } from '../api/session';
import { ChangePassphraseDialog } from './ChangePassphraseDialog';
import { LockIcon } from './icons';

/** `uploading`: files still being sent to the node (locking or signing out stops them). */
export function AccountActions({ uploading = 0 }: { uploading?: number }) {
  const session = useSession();
  const name = session.gate.kind === 'unlocked' ? session.gate.identity.name : null;
  const [busy, setBusy] = useState<'lock' | 'logout' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [changing, setChanging] = useState(false);
  // Said in a live region that outlives the dialog.
  const [notice, setNotice] = useState('');

  // On success this component is gone (another screen takes over).
  const run = async (action: 'lock' | 'logout') => {
    if (uploading > 0) {
      const files = uploading === 1 ? '1 file is' : `${uploading} files are`;
      const verb = action === 'lock' ? 'Lock' : 'Sign out';
      if (!window.confirm(`${files} still being sent and will stop. ${verb} anyway?`)) return;
    }
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
          onClick={() => {
            setNotice('');
            setChanging(true);
          }}
          disabled={busy !== null}
          aria-haspopup="dialog"
          title="Choose a new passphrase for your keys"
        >
          Change passphrase
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
      <p role="status" className={notice ? 'account-notice' : 'sr-only'}>
        {notice}
      </p>
      {changing && (
        <ChangePassphraseDialog
          onChange={async (current, next) => {
            await session.api.changePassphrase(current, next);
          }}
          onChanged={() => {
            setChanging(false);
            setNotice('Passphrase changed. Use the new one from now on.');
          }}
          onClose={() => setChanging(false)}
        />
      )}
    </div>
  );
}
