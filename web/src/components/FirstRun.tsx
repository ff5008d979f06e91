// The first-run screen: makes this node's identity (`POST /v1/identity`), protected
// by a passphrase that nobody can recover.

import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/client';
import { useProblemFocus } from '../hooks/useProblemFocus';
import { MIN_PASSPHRASE_CHARS, PASSPHRASE_TOO_SHORT, tooShort } from '../lib/passphrase';

/** The node's rule, re-exported for the views that imported it from here. */
export { MIN_PASSPHRASE_CHARS };
/** The node's limit on the published display name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64;

type Field = 'name' | 'passphrase' | 'confirm';
/** What is wrong, and where: a field, or the node's answer (`form`). */
type Problem = { field: Field | 'form'; message: string };

interface Props {
  /** Rejects with the API's error; resolves once the messenger takes over. */
  onCreate: (passphrase: string, name?: string) => Promise<void>;
}

/** Why the form cannot be sent as it is, or null. Checked in field order. */
export function firstRunProblem(name: string, passphrase: string, confirm: string): Problem | null {
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) {
    return { field: 'name', message: `The name is too long: at most ${MAX_NAME_BYTES} bytes.` };
  }
  if (tooShort(passphrase)) {
    return { field: 'passphrase', message: PASSPHRASE_TOO_SHORT };
  }
  if (confirm !== passphrase) {
    return { field: 'confirm', message: 'The passphrases do not match.' };
  }
  return null;
}

export function FirstRun({ onCreate }: Props) {
  const id = useId();
  const ids = {
    intro: `${id}-intro`,
    nameHint: `${id}-name-hint`,
    passHint: `${id}-pass-hint`,
    error: `${id}-error`,
  };
  const title = useRef<HTMLHeadingElement>(null);
  const fields = {
    name: useRef<HTMLInputElement>(null),
    passphrase: useRef<HTMLInputElement>(null),
    confirm: useRef<HTMLInputElement>(null),
  };
  const [name, setName] = useState('');
  const [passphrase, setPassphrase] = useState('');
  const [confirm, setConfirm] = useState('');
  const [shown, setShown] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);

  useEffect(() => title.current?.focus(), []);
  // Focus follows each new problem: to its field, or the button for the node's answer.
  const submitButton = useRef<HTMLButtonElement>(null);
  useProblemFocus(problem, fields, submitButton);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const trimmed = name.trim();
    const found = firstRunProblem(trimmed, passphrase, confirm);
    setProblem(found);
    if (found) return;
    setBusy(true);
    try {
      await onCreate(passphrase, trimmed || undefined);
    } catch (err) {
      setProblem({ field: 'form', message: errorMessage(err) });
      setBusy(false);
    }
  };

  // A field's hint, then its error, read when it gets focus.
  const describedBy = (field: Field, hint?: string) =>
    [hint, problem?.field === field ? ids.error : undefined].filter(Boolean).join(' ') || undefined;
  const fieldError = (field: Field) =>
    problem?.field === field && (
      <p id={ids.error} className="error">
        {problem.message}
      </p>
    );

  return (
    <main className="signed-out" aria-labelledby={`${id}-title`}>
      <div className="signed-out-card">
        <h1 id={`${id}-title`} tabIndex={-1} ref={title}>
          Set up Communitas
        </h1>
        <p id={ids.intro}>
          Your keys are made here, on this device. There is no server and no account recovery: if you forget your
          passphrase, your identity is lost.
        </p>
        <form className="form" onSubmit={(e) => void submit(e)} noValidate aria-busy={busy}>
          <label htmlFor={`${id}-name`}>
            Display name <span className="muted">(optional)</span>
          </label>
          <input
            id={`${id}-name`}
            ref={fields.name}
            type="text"
            autoComplete="nickname"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={problem?.field === 'name'}
            aria-describedby={describedBy('name', ids.nameHint)}
          />
          <p id={ids.nameHint} className="hint">
            Published with your address: anyone who looks your address up can see it. At most {MAX_NAME_BYTES} bytes.
          </p>
          {fieldError('name')}

          <label htmlFor={`${id}-passphrase`}>Passphrase</label>
          <input
            id={`${id}-passphrase`}
            ref={fields.passphrase}
            type={shown ? 'text' : 'password'}
            autoComplete="new-password"
            value={passphrase}
            onChange={(e) => setPassphrase(e.target.value)}
            aria-invalid={problem?.field === 'passphrase'}
            aria-describedby={describedBy('passphrase', ids.passHint)}
          />
          <p id={ids.passHint} className="hint">
            At least {MIN_PASSPHRASE_CHARS} characters. A few unrelated words are easy to remember and hard to guess.
          </p>
          {fieldError('passphrase')}

          <label htmlFor={`${id}-confirm`}>Confirm passphrase</label>
          <input
            id={`${id}-confirm`}
            ref={fields.confirm}
            type={shown ? 'text' : 'password'}
            autoComplete="new-password"
            value={confirm}
            onChange={(e) => setConfirm(e.target.value)}
            aria-invalid={problem?.field === 'confirm'}
            aria-describedby={describedBy('confirm')}
          />
          {fieldError('confirm')}

          <label className="setting-label">
            <input type="checkbox" checked={shown} onChange={(e) => setShown(e.target.checked)} />
            Show passphrase
          </label>

          {problem?.field === 'form' && (
            <p id={ids.error} role="alert" className="error">
              {problem.message}
            </p>
          )}
          <div className="dialog-actions">
            <button ref={submitButton} type="submit" className="button primary" disabled={busy} aria-busy={busy}>
              {busy ? 'Creating your keys…' : 'Create identity'}
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
