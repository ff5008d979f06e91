// Under the sidebar's header: your display name and "Change name", "Lock" (stop the node and drop
// its keys), "Change passphrase" (a dialog) and "Sign out" (end this browser's
// session).

import { useState } from 'react';
import { errorMessage } from '../api/client';
import { useSession } from '../api/session';
import { ChangePassphraseDialog } from './ChangePassphraseDialog';
import { LockIcon } from './icons';
import { NameDialog } from './NameDialog';

/** `uploading`: files still being sent to the node (locking or signing out stops them). */
export function AccountActions({ uploading = 0 }: { uploading?: number }) {
  const session = useSession();
  const name = session.gate.kind === 'unlocked' ? session.gate.identity.name : null;
  const [busy, setBusy] = useState<'lock' | 'logout' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [changing, setChanging] = useState(false);
  const [naming, setNaming] = useState(false);
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
        <p className="account-name" dir="auto" title="Your display name, published with your address">
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
            setNaming(true);
          }}
          disabled={busy !== null}
          aria-haspopup="dialog"
          title="Change the name published with your address"
        >
          {name ? 'Change name' : 'Set name'}
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
      {naming && (
        <NameDialog
          title="Your display name"
          label="Display name"
          hint="Published with your address: people who add you see it. Leave it empty for none."
          initial={name ?? ''}
          onSave={async (next) => {
            const profile = await session.api.setName(next);
            session.renamed(profile.name);
            setNotice(profile.name ? `Your name is now ${profile.name}.` : 'You have no display name now.');
          }}
          onClose={() => setNaming(false)}
        />
      )}
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
