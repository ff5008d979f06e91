// The safety number to compare with a contact, and the action to mark them verified.

import { useEffect, useRef, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Contact } from '../api/types';
import { ShieldIcon } from './icons';

interface Props {
  contact: Contact;
  onVerify: () => Promise<void>;
}

export function SafetyNumber({ contact, onVerify }: Props) {
  const api = useApi();
  const [number, setNumber] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const name = contact.name || contact.address;
  // The button goes once verified: keep focus here rather than losing it to <body>.
  const verifiedNote = useRef<HTMLParagraphElement>(null);
  const clicked = useRef(false);
  useEffect(() => {
    if (contact.verified && clicked.current) verifiedNote.current?.focus();
  }, [contact.verified]);

  useEffect(() => {
    let cancelled = false;
    api.safetyNumber(contact.address).then(
      (n) => !cancelled && setNumber(n.safety_number),
      (e: unknown) => !cancelled && setError(errorMessage(e)),
    );
    return () => {
      cancelled = true;
    };
  }, [api, contact.address]);

  const verify = async () => {
    setBusy(true);
    setError(null);
    clicked.current = true;
    try {
      await onVerify();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const groups = number?.split(/\s+/).filter(Boolean) ?? [];
  return (
    <div className="safety">
      <p>
        Compare this number with the one <strong>{name}</strong> sees, in person or on a call you trust. If every
        group matches, nobody is in the middle.
      </p>
      {number ? (
        <ol className="safety-number" aria-label={`Safety number: ${number}`} translate="no">
          {groups.map((g, i) => (
            <li key={i}>{g}</li>
          ))}
        </ol>
      ) : (
        !error && <p className="muted">Loading the safety number…</p>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {contact.verified ? (
        <p className="verified" role="status" tabIndex={-1} ref={verifiedNote}>
          <ShieldIcon /> {name} is verified.
        </p>
      ) : (
        <button
          type="button"
          className="button primary"
          onClick={() => void verify()}
          disabled={busy || !number}
          data-autofocus
        >
          <ShieldIcon /> Mark verified
        </button>
      )}
    </div>
  );
}
