// Message requests (issue 15): strangers who wrote. Each shows its first message and
// the safety number to compare before accepting; Accept makes a contact, Delete
// removes the request and its messages, Block also blocks the address.

import { useState } from 'react';
import { errorMessage } from '../api/client';
import type { Address, MessageRequest } from '../api/types';
import { formatTime, isoTime } from '../lib/format';

interface Props {
  requests: MessageRequest[];
  onAccept: (address: Address) => Promise<void>;
  onDecline: (address: Address, block: boolean) => Promise<void>;
}

export function Requests({ requests, onAccept, onDecline }: Props) {
  return (
    <section className="requests" aria-labelledby="requests-title">
      <h2 id="requests-title" className="section-title">
        Message requests
        {requests.length > 0 && (
          <span className="count">
            <span aria-hidden="true">{requests.length}</span>
            <span className="sr-only">({requests.length})</span>
          </span>
        )}
      </h2>
      {requests.length === 0 ? (
        <p className="small muted">No message requests. A stranger&apos;s first message waits here until you accept it.</p>
      ) : (
        <ul className="request-list">
          {requests.map((r) => (
            <RequestItem key={r.address} request={r} onAccept={onAccept} onDecline={onDecline} />
          ))}
        </ul>
      )}
    </section>
  );
}

interface ItemProps {
  request: MessageRequest;
  onAccept: (address: Address) => Promise<void>;
  onDecline: (address: Address, block: boolean) => Promise<void>;
}

function RequestItem({ request: r, onAccept, onDecline }: ItemProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const act = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };
  const more = r.count > 1 ? ` and ${r.count - 1} more` : '';
  return (
    <li className="request" aria-label={`Request from ${r.address}`}>
      <p className="request-from" translate="no">
        {r.address}
      </p>
      {r.name && (
        // Its own claim (issue 23 item 3), never shown as a verified name.
        <p className="small request-name">
          Calls themselves “<bdi>{r.name}</bdi>” <span className="muted">(unverified)</span>
        </p>
      )}
      <blockquote className="request-first">
        {r.first_is_file ? `[file] ${r.first_text ?? ''}` : (r.first_text ?? '')}
      </blockquote>
      <p className="small muted">
        <time dateTime={isoTime(r.first_at)}>{formatTime(r.first_at)}</time>
        {more}
      </p>
      <p className="small request-safety-label">Safety number</p>
      {/* Laid out as in the add-contact dialog, so the two are compared group by group. */}
      <ol className="safety-number compact" aria-label={`Safety number: ${r.safety_number}`} translate="no">
        {r.safety_number
          .split(/\s+/)
          .filter(Boolean)
          .map((group, i) => (
            <li key={i}>{group}</li>
          ))}
      </ol>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="request-actions">
        <button
          type="button"
          className="button primary small"
          disabled={busy}
          onClick={() => void act(() => onAccept(r.address))}
          aria-label={`Accept the request from ${r.address}`}
        >
          Accept
        </button>
        <button
          type="button"
          className="button small"
          disabled={busy}
          onClick={() => void act(() => onDecline(r.address, false))}
          aria-label={`Delete the request from ${r.address}`}
        >
          Delete
        </button>
        <button
          type="button"
          className="button small danger"
          disabled={busy}
          onClick={() => void act(() => onDecline(r.address, true))}
          aria-label={`Delete the request from ${r.address} and block it`}
        >
          Block
        </button>
      </div>
    </li>
  );
}
