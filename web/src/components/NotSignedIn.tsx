// Shown instead of everything else once the node answers 401.

import { useEffect, useRef } from 'react';

export function NotSignedIn() {
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  return (
    <main className="signed-out" aria-labelledby="signed-out-title">
      <div className="signed-out-card">
        <h1 id="signed-out-title" tabIndex={-1} ref={title}>
          Not signed in
        </h1>
        <p>This browser has no session with your Communitas node.</p>
        <p>
          Open the login link that <code>communitas run</code> or <code>communitas demo</code> printed in its terminal,
          in this browser. It looks like <code translate="no">http://127.0.0.1:PORT/login?code=…</code> and works once.
        </p>
        <button type="button" className="button primary" onClick={() => window.location.reload()}>
          Try again
        </button>
      </div>
    </main>
  );
}
