// Copies text to the clipboard and says so, visibly and to screen readers.

import { useEffect, useState } from 'react';
import { CopyIcon } from './icons';

type Outcome = 'idle' | 'copied' | 'failed';

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [outcome, setOutcome] = useState<Outcome>('idle');

  useEffect(() => {
    if (outcome === 'idle') return;
    const timer = setTimeout(() => setOutcome('idle'), 2500);
    return () => clearTimeout(timer);
  }, [outcome]);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setOutcome('copied');
    } catch {
      setOutcome('failed');
    }
  };

  return (
    <>
      <button type="button" className="button" onClick={() => void copy()}>
        <CopyIcon /> {outcome === 'copied' ? 'Copied' : label}
      </button>
      <span role="status" className="copy-outcome">
        {outcome === 'copied' && <span className="sr-only">Copied to the clipboard</span>}
        {outcome === 'failed' && 'Could not copy; select the text and copy it by hand.'}
      </span>
    </>
  );
}
