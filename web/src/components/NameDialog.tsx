// A name to set: a contact's (rename) or our own display name. Empty clears it.
// The node checks the same rule (`invalid_name`); its message shows here.

import { useId, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/client';
import { Dialog } from './Dialog';

/** Longest name, in UTF-8 bytes (the node's rule, `communitas_node::check_name`). */
export const MAX_NAME_BYTES = 128;

/** Why `name` cannot be saved, or null. Empty is allowed: it clears the name. */
export function nameProblem(name: string): string | null {
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) return `Use at most ${MAX_NAME_BYTES} bytes.`;
  // Control characters: Unicode's Cc, what Rust's `char::is_control` refuses.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'Use no line breaks or tabs.';
  return null;
}

interface Props {
  title: string;
  label: string;
  hint: string;
  initial: string;
  /** Saves the name (`null` clears it); rejects with the API's error. */
  onSave: (name: string | null) => Promise<void>;
  onClose: () => void;
}

export function NameDialog({ title, label, hint, initial, onSave, onClose }: Props) {
  const id = useId();
  const [name, setName] = useState(initial);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const found = nameProblem(name);
    setProblem(found);
    if (found) return;
    setBusy(true);
    try {
      await onSave(name.trim() === '' ? null : name.trim());
      onClose();
    } catch (err) {
      setBusy(false);
      setProblem(errorMessage(err));
    }
  };

  return (
    <Dialog title={title} onClose={() => !busy && onClose()}>
      <form className="form" onSubmit={(e) => void submit(e)} noValidate aria-busy={busy}>
        <label htmlFor={`${id}-name`}>{label}</label>
        <input
          id={`${id}-name`}
          dir="auto"
          value={name}
          onChange={(e) => setName(e.target.value)}
          aria-invalid={problem !== null}
          aria-describedby={`${id}-hint${problem ? ` ${id}-error` : ''}`}
          data-autofocus
        />
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
        {problem && (
          <p id={`${id}-error`} className="error" role="alert">
            {problem}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={busy} aria-busy={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
