// "Change passphrase" (decision 0014): the node re-encrypts its keystore under the
// new passphrase (`POST /v1/passphrase`). The fields follow the first-run screen.

import { useId, useRef, useState, type FormEvent } from 'react';
import { ApiError, errorMessage } from '../api/client';
import { useProblemFocus } from '../hooks/useProblemFocus';
import { Dialog } from './Dialog';
import { MIN_PASSPHRASE_CHARS, PASSPHRASE_TOO_SHORT, tooShort } from '../lib/passphrase';

type Field = 'current' | 'next' | 'confirm';
/** What is wrong, and where: a field, or the node's answer (`form`). `alert` is set
 * for the node's answers, which arrive while focus may be elsewhere. */
type Problem = { field: Field | 'form'; message: string; alert: boolean };

interface Props {
  /** Rejects with the API's error. */
  onChange: (current: string, next: string) => Promise<void>;
  /** The passphrase was changed: the opener closes the dialog and says so. */
  onChanged: () => void;
  /** Closed without a change. */
  onClose: () => void;
}

/** Why the form cannot be sent as it is, or null. Checked in field order. */
export function changePassphraseProblem(current: string, next: string, confirm: string): Problem | null {
  if (!current) {
    return { field: 'current', message: 'Enter your current passphrase.', alert: false };
  }
  if (tooShort(next)) {
    return { field: 'next', message: PASSPHRASE_TOO_SHORT, alert: false };
  }
  if (next === current) {
    return { field: 'next', message: 'The new passphrase is the same as the current one.', alert: false };
  }
  if (confirm !== next) {
    return { field: 'confirm', message: 'The passphrases do not match.', alert: false };
  }
  return null;
}

export function ChangePassphraseDialog({ onChange, onChanged, onClose }: Props) {
  const id = useId();
  const ids = { hint: `${id}-hint`, error: `${id}-error` };
  const fields = {
    current: useRef<HTMLInputElement>(null),
    next: useRef<HTMLInputElement>(null),
    confirm: useRef<HTMLInputElement>(null),
  };
  const submitButton = useRef<HTMLButtonElement>(null);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [shown, setShown] = useState(false);
  const [busy, setBusy] = useState(false);
  // A new object per problem, so focus moves to its field each time.
  const [problem, setProblem] = useState<Problem | null>(null);

  useProblemFocus(problem, fields, submitButton);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const found = changePassphraseProblem(current, next, confirm);
    setProblem(found);
    if (found) return;
    setBusy(true);
    try {
      await onChange(current, next);
      onChanged();
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.code === 'wrong_passphrase') {
        setCurrent('');
        setProblem({ field: 'current', message: 'The current passphrase is wrong. Nothing was changed.', alert: true });
      } else {
        setProblem({ field: 'form', message: errorMessage(err), alert: true });
      }
    }
  };

  // A field's hint, then its error, read when it gets focus.
  const describedBy = (field: Field, hint?: string) =>
    [hint, problem?.field === field ? ids.error : undefined].filter(Boolean).join(' ') || undefined;
  const errorFor = (field: Field | 'form') =>
    problem?.field === field && (
      <p id={ids.error} className="error" role={problem.alert ? 'alert' : undefined}>
        {problem.message}
      </p>
    );
  const input = (field: Field, value: string, set: (v: string) => void, hint?: string) => (
    <input
      id={`${id}-${field}`}
      ref={fields[field]}
      type={shown ? 'text' : 'password'}
      autoComplete={field === 'current' ? 'current-password' : 'new-password'}
      value={value}
      onChange={(e) => set(e.target.value)}
      aria-invalid={problem?.field === field}
      aria-describedby={describedBy(field, hint)}
      data-autofocus={field === 'current' ? true : undefined}
    />
  );

  // While the node works the dialog stays: closing it would hide how it ended.
  const close = () => {
    if (!busy) onClose();
  };

  return (
    <Dialog title="Change passphrase" onClose={close}>
      <form className="form" onSubmit={(e) => void submit(e)} noValidate aria-busy={busy}>
        <label htmlFor={`${id}-current`}>Current passphrase</label>
        {input('current', current, setCurrent)}
        {errorFor('current')}

        <label htmlFor={`${id}-next`}>New passphrase</label>
        {input('next', next, setNext, ids.hint)}
        <p id={ids.hint} className="hint">
          At least {MIN_PASSPHRASE_CHARS} characters. Nobody can recover it: if you forget it, your identity is lost.
        </p>
        {errorFor('next')}

        <label htmlFor={`${id}-confirm`}>Confirm new passphrase</label>
        {input('confirm', confirm, setConfirm)}
        {errorFor('confirm')}

        <label className="setting-label">
          <input type="checkbox" checked={shown} onChange={(e) => setShown(e.target.checked)} />
          Show passphrases
        </label>

        {errorFor('form')}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={close} disabled={busy}>
            Cancel
          </button>
          <button ref={submitButton} type="submit" className="button primary" disabled={busy} aria-busy={busy}>
            {busy ? 'Changing…' : 'Change passphrase'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
