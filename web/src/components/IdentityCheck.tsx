// What shows while the app asks the node where the identity stands, and if it
// cannot tell.

import { useEffect, useRef } from 'react';

export function CheckingIdentity() {
  return (
    <main className="signed-out" aria-busy="true">
      <p className="muted" role="status">
        Loading…
      </p>
    </main>
  );
}

export function IdentityUnavailable({ message, onRetry }: { message: string; onRetry: () => void }) {
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  return (
    <main className="signed-out" aria-labelledby="unavailable-title">
      <div className="signed-out-card">
        <h1 id="unavailable-title" tabIndex={-1} ref={title}>
          Cannot start Communitas
        </h1>
        <p role="alert" className="error">
          {message}
        </p>
        <button type="button" className="button primary" onClick={onRetry}>
          Try again
        </button>
      </div>
    </main>
  );
}
