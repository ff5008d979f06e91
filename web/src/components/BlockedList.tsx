// The blocked addresses, in the settings (issue 15), each with a way to unblock it.

import { useState } from 'react';
import { errorMessage } from '../api/client';
import type { Address, Block } from '../api/types';

interface Props {
  blocks: Block[];
  nameOf: (address: Address) => string;
  onUnblock: (address: Address) => Promise<void>;
}

export function BlockedList({ blocks, nameOf, onUnblock }: Props) {
  const [error, setError] = useState<string | null>(null);
  const unblock = async (address: Address) => {
    setError(null);
    try {
      await onUnblock(address);
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  return (
    <div className="blocked" role="group" aria-labelledby="blocked-title">
      <h3 id="blocked-title" className="setting-title">
        Blocked
      </h3>
      {blocks.length === 0 ? (
        <p className="small muted">Nobody is blocked.</p>
      ) : (
        <ul className="blocked-list">
          {blocks.map((b) => (
            <li key={b.address}>
              <span translate="no">{nameOf(b.address)}</span>
              <button
                type="button"
                className="button small"
                onClick={() => void unblock(b.address)}
                aria-label={`Unblock ${nameOf(b.address)}`}
              >
                Unblock
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
