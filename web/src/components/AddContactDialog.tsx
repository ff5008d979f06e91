// Add a contact by four words, then compare the safety number.

import { useId, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/client';
import type { Contact } from '../api/types';
import { AddressInput } from './AddressInput';
import { Dialog } from './Dialog';
import { SafetyNumber } from './SafetyNumber';

interface Props {
  /** Prefills the address, e.g. for a sender who is not a contact yet. */
  initialAddress?: string;
  onAdd: (address: string, name?: string) => Promise<Contact>;
  onVerify: (address: string) => Promise<void>;
  onOpen: (address: string) => void;
  onClose: () => void;
}

export function AddContactDialog({ initialAddress = '', onAdd, onVerify, onOpen, onClose }: Props) {
  const errorId = useId();
  const [address, setAddress] = useState(initialAddress);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [added, setAdded] = useState<Contact | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      setAdded(await onAdd(address.trim(), name.trim() || undefined));
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  if (added) {
    return (
      <Dialog key="verify" title={`${added.name || added.address} added`} onClose={onClose}>
        <SafetyNumber
          contact={added}
          onVerify={async () => {
            await onVerify(added.address);
            setAdded({ ...added, verified: true });
          }}
        />
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose}>
            Not now
          </button>
          <button type="button" className="button primary" onClick={() => onOpen(added.address)}>
            Open conversation
          </button>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog key="add" title="Add a contact" onClose={onClose}>
      <form onSubmit={(e) => void submit(e)} className="form" noValidate>
        <label htmlFor="add-address">Their four-word address</label>
        <AddressInput
          id="add-address"
          value={address}
          onChange={(next) => {
            setAddress(next);
            // The node's answer (and its "did you mean") was about the old text.
            setError(null);
          }}
          autoFocus
          invalid={error !== null}
          describedBy={error ? errorId : undefined}
        />
        <label htmlFor="add-name">
          Name <span className="muted">(optional, only you see it)</span>
        </label>
        <input id="add-name" type="text" maxLength={128} value={name} onChange={(e) => setName(e.target.value)} />
        {error && (
          <p id={errorId} role="alert" className="error">
            {error}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy || !address.trim()}>
            {busy ? 'Looking up…' : 'Add contact'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
