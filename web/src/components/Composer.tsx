// The message box: Enter sends, Shift+Enter starts a new line. Attachments are shown
// as coming soon; the node has no file API yet.

import { useEffect, useId, useImperativeHandle, useRef, useState, type FormEvent, type KeyboardEvent, type Ref } from 'react';
import { errorMessage } from '../api/client';
import { PaperclipIcon, SendIcon } from './icons';

interface Props {
  /** The accessible name of the text box, e.g. "Message to Bob". */
  label: string;
  /** Rejects with the error to show; the text is kept so nothing is lost. */
  onSend: (text: string) => Promise<void>;
  ref?: Ref<ComposerHandle>;
}

export interface ComposerHandle {
  focus: () => void;
}

export function Composer({ label, onSend, ref }: Props) {
  const hintId = useId();
  const attachHintId = useId();
  const box = useRef<HTMLTextAreaElement>(null);
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useImperativeHandle(ref, () => ({ focus: () => box.current?.focus() }), []);

  // Grow with the text, up to the CSS max-height.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${el.scrollHeight}px`;
  }, [text]);

  const send = async () => {
    const message = text.trim();
    if (!message || sending) return;
    setSending(true);
    setError(null);
    try {
      await onSend(message);
      setText('');
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setSending(false);
      box.current?.focus();
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    // Shift+Enter keeps the default (a newline); so does Enter while an IME composes.
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void send();
  };

  return (
    <form className="composer" onSubmit={onSubmit} aria-label="Write a message">
      {error && (
        <p role="alert" className="error composer-error">
          {error}
        </p>
      )}
      <div className="composer-row">
        <button
          type="button"
          className="icon-button attach"
          aria-disabled="true"
          aria-label="Attach a file"
          aria-describedby={attachHintId}
          title="File sharing is coming soon"
          onClick={(e) => e.preventDefault()}
        >
          <PaperclipIcon />
        </button>
        <span id={attachHintId} className="sr-only">
          File sharing is coming soon
        </span>
        <textarea
          ref={box}
          className="composer-input"
          rows={1}
          value={text}
          aria-label={label}
          aria-describedby={hintId}
          placeholder="Write a message"
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" className="icon-button send" disabled={sending || !text.trim()} aria-label="Send">
          <SendIcon />
        </button>
      </div>
      <p id={hintId} className="hint composer-hint">
        Enter to send, Shift+Enter for a new line
      </p>
    </form>
  );
}
