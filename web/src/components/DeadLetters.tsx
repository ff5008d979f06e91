// Messages the node gave up delivering, with why, and a way to try again.

import { useEffect, useRef, useState } from 'react';
import { errorMessage } from '../api/client';
import type { Address, DeadLetter, MessageId } from '../api/types';
import { formatTime, isoTime } from '../lib/format';
import { BackIcon } from './icons';

interface Props {
  letters: DeadLetter[];
  loaded: boolean;
  error: string | null;
  nameOf: (address: Address) => string;
  onRetry: (id: MessageId) => Promise<void>;
  onOpen: (address: Address) => void;
  onBack: () => void;
}

export function DeadLetters({ letters, loaded, error, nameOf, onRetry, onOpen, onBack }: Props) {
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  return (
    <section className="dead-letters" aria-labelledby="dead-title">
      <header className="pane-header">
        <button type="button" className="icon-button back" onClick={onBack} aria-label="Back to contacts">
          <BackIcon />
        </button>
        <div className="pane-title">
          <h2 id="dead-title" tabIndex={-1} ref={title}>
            Dead letters
          </h2>
          <p className="small muted">Messages that could not be delivered. Retrying puts them back in the outbox.</p>
        </div>
      </header>
      {error && (
        <p role="alert" className="error banner">
          {error}
        </p>
      )}
      <div className="pane-body">
        {loaded && letters.length === 0 && !error && <p className="empty">Nothing here: every message found its way.</p>}
        <ul className="letters">
          {letters.map((d) => (
            <Letter key={d.id} letter={d} name={nameOf(d.to)} onRetry={onRetry} onOpen={onOpen} />
          ))}
        </ul>
      </div>
    </section>
  );
}

interface LetterProps {
  letter: DeadLetter;
  name: string;
  onRetry: (id: MessageId) => Promise<void>;
  onOpen: (address: Address) => void;
}

function Letter({ letter: d, name, onRetry, onOpen }: LetterProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const retry = async () => {
    setBusy(true);
    setError(null);
    try {
      await onRetry(d.id);
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };

  return (
    <li className="letter">
      <div className="letter-main">
        <p>
          To{' '}
          <button type="button" className="link" onClick={() => onOpen(d.to)}>
            {name}
          </button>
        </p>
        <p className="reason">{d.reason}</p>
        <p className="small muted">
          Gave up <time dateTime={isoTime(d.failed_at)}>{formatTime(d.failed_at)}</time> after {d.attempts}{' '}
          {d.attempts === 1 ? 'attempt' : 'attempts'}
        </p>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </div>
      <button type="button" className="button" onClick={() => void retry()} disabled={busy} aria-label={`Retry the message to ${name}`}>
        {busy ? 'Retrying…' : 'Retry'}
      </button>
    </li>
  );
}
