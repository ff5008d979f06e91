// The API client shared by every hook, and where the app stands: signed in or not,
// and whether this node's identity is new, locked or unlocked.
//
// The session is an HttpOnly cookie the node sets at `/login?code=…`; the UI can
// only learn that it is missing, from a 401. The identity's state comes from
// `GET /v1/identity` (asked by the app at start, not by the provider, so hooks
// tested inside a bare provider see only their own requests), and again whenever a request answers 423 or the
// event stream says `locked` (decision 0013).

import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from 'react';
import { createClient, errorMessage, NotSignedInError, type ApiClient } from './client';
import type { Identity } from './types';

/** Which screen the app shows. */
export type Gate =
  /** Asking `GET /v1/identity`. */
  | { kind: 'checking' }
  /** The node could not tell us (unreachable, or an unexpected answer). */
  | { kind: 'unavailable'; message: string }
  /** No session: a 401, or the user signed out (`byUser`). */
  | { kind: 'signed_out'; byUser: boolean }
  | { kind: 'new' }
  | { kind: 'locked' }
  /** `generation` counts unlocks, so each one mounts a fresh messenger. */
  | { kind: 'unlocked'; identity: Identity; generation: number };

interface Session {
  api: ApiClient;
  gate: Gate;
  /** Asks the node where the identity stands (the app does at start). Stable. */
  check(): void;
  /** The identity was locked elsewhere (the event stream said so). */
  locked(): void;
  /** Creates the identity; the messenger follows. Rejects with the API's error. */
  create(passphrase: string, name?: string): Promise<void>;
  /** Unlocks the identity; the messenger follows. Rejects with the API's error. */
  unlock(passphrase: string): Promise<void>;
  /** Locks the identity; the unlock screen follows. */
  lock(): Promise<void>;
  /** Ends this browser's session; the signed-out screen follows. */
  logout(): Promise<void>;
  /** Our display name changed (here, or told by a `profile` event). */
  renamed(name: string | null): void;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children, fetch }: { children: ReactNode; fetch?: typeof globalThis.fetch }) {
  const [gate, setGate] = useState<Gate>({ kind: 'checking' });
  const unlocks = useRef(0);
  // Numbers each question about the identity; an answer to an older one is dropped
  // (a burst of 423s asks several times, and create/unlock/lock answer directly).
  const latest = useRef(0);

  // Signed out is final: only a new login link (a page load) leaves it.
  const move = useCallback((next: Gate) => setGate((g) => (g.kind === 'signed_out' ? g : next)), []);

  const show = useCallback(
    (identity: Identity) => {
      latest.current += 1;
      if (identity.state === 'unlocked') {
        unlocks.current += 1;
        move({ kind: 'unlocked', identity, generation: unlocks.current });
      } else {
        move({ kind: identity.state });
      }
    },
    [move],
  );

  const ask = useCallback(
    async (client: ApiClient) => {
      latest.current += 1;
      const question = latest.current;
      try {
        const identity = await client.identity();
        if (question === latest.current) show(identity);
      } catch (e) {
        // A 401 has already moved to signed_out through onUnauthorized.
        if (question === latest.current && !(e instanceof NotSignedInError)) {
          move({ kind: 'unavailable', message: errorMessage(e) });
        }
      }
    },
    [move, show],
  );

  // Leave the messenger at once (its data belongs to the locked identity), then
  // make sure: the identity may be gone, or unlocked again, by now.
  const lockedElsewhere = useCallback(
    (client: ApiClient) => {
      move({ kind: 'locked' });
      void ask(client);
    },
    [move, ask],
  );

  const api = useMemo(() => {
    const client: ApiClient = createClient({
      fetch,
      onUnauthorized: () => setGate((g) => (g.kind === 'signed_out' ? g : { kind: 'signed_out', byUser: false })),
      onLocked: () => lockedElsewhere(client),
    });
    return client;
  }, [fetch, lockedElsewhere]);

  const check = useCallback(() => {
    move({ kind: 'checking' });
    void ask(api);
  }, [api, move, ask]);

  const session = useMemo<Session>(
    () => ({
      api,
      gate,
      check,
      locked: () => lockedElsewhere(api),
      create: async (passphrase, name) => show(await api.createIdentity(passphrase, name)),
      unlock: async (passphrase) => show(await api.unlock(passphrase)),
      lock: async () => show(await api.lock()),
      logout: async () => {
        await api.logout();
        latest.current += 1;
        setGate({ kind: 'signed_out', byUser: true });
      },
      // The same messenger stays (same generation): only the name moves.
      renamed: (name) =>
        setGate((g) => (g.kind === 'unlocked' ? { ...g, identity: { ...g.identity, name } } : g)),
    }),
    [api, gate, check, show, lockedElsewhere],
  );
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
