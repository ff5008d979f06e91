// The API client shared by every hook, and whether the browser is signed in.
//
// The session is an HttpOnly cookie the node sets at `/login?code=…`; the UI can
// only learn that it is missing, from a 401.

import { createContext, useContext, useMemo, useState, type ReactNode } from 'react';
import { createClient, type ApiClient } from './client';

interface Session {
  api: ApiClient;
  /** False once any request was answered 401. */
  signedIn: boolean;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children, fetch }: { children: ReactNode; fetch?: typeof globalThis.fetch }) {
  const [signedIn, setSignedIn] = useState(true);
  const api = useMemo(
    () => createClient({ fetch, onUnauthorized: () => setSignedIn(false) }),
    [fetch],
  );
  const session = useMemo(() => ({ api, signedIn }), [api, signedIn]);
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession must be used inside <SessionProvider>');
  return session;
}

export function useApi(): ApiClient {
  return useSession().api;
}
