// Shown instead of everything else once the node answers 401, or after signing out.

import { useEffect, useRef } from 'react';

interface Props {
  /** The user pressed "Sign out" (rather than a session that ran out or never was). */
  signedOut?: boolean;
}

export function NotSignedIn({ signedOut = false }: Props) {
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  return (
    <main className="signed-out" aria-labelledby="signed-out-title">
      <div className="signed-out-card">
        <h1 id="signed-out-title" tabIndex={-1} ref={title}>
          {signedOut ? 'Signed out' : 'Not signed in'}
        </h1>
        {signedOut ? (
          <>
            <p>This browser's session with your Communitas node has ended. Your node itself was not changed.</p>
            <p>
              To sign in again, run <code>communitas login-link</code> on the computer where your node runs, and open
              the link it prints in this browser. Each link works once.
            </p>
          </>
        ) : (
          <>
            <p>This browser has no session with your Communitas node.</p>
            <p>
              Open the login link that <code>communitas run</code> or <code>communitas demo</code> printed in its
              terminal, in this browser. It looks like <code translate="no">http://127.0.0.1:PORT/login?code=…</code>{' '}
              and works once; <code>communitas login-link</code> prints a fresh one.
            </p>
            <button type="button" className="button primary" onClick={() => window.location.reload()}>
              Try again
            </button>
          </>
        )}
      </div>
    </main>
  );
}
