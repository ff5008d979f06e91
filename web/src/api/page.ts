// The page token (issue 16 item 4, docs/security.md). The node hands it to this page
// once, in the fragment of the login redirect (`/#page=…`, which never travels over
// the network). The page keeps it in its origin's localStorage — this port's only —
// and sends it with every request, so that the session cookie alone, which browsers
// send to every port of 127.0.0.1, is not a session.

const KEY = 'communitas-page';
/** The header that carries the token on `fetch` and XMLHttpRequest calls. */
export const PAGE_HEADER = 'X-Communitas-Page';

/** Where the token is kept: `localStorage` in the app, a stand-in in tests. */
type Storage = Pick<globalThis.Storage, 'getItem' | 'setItem' | 'removeItem'>;

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // Storage disabled: requests go without a token and answer 401.
  }
}

/**
 * Takes the token out of the address bar's fragment, if the login redirect put one
 * there, keeps it, and clears the fragment so it is neither bookmarked nor shown.
 */
export function adoptPageToken(
  location: Pick<Location, 'hash' | 'pathname' | 'search'> = window.location,
  history: Pick<History, 'replaceState'> = window.history,
  store: Storage | null = storage(),
): void {
  const token = /^#page=([0-9a-f]{64})$/.exec(location.hash)?.[1];
  if (!token) return;
  store?.setItem(KEY, token);
  history.replaceState(null, '', location.pathname + location.search);
}

/** The kept token, if any. */
export function pageToken(store: Storage | null = storage()): string | null {
  return store?.getItem(KEY) ?? null;
}

/** Forgets the token (at logout). */
export function forgetPageToken(store: Storage | null = storage()): void {
  store?.removeItem(KEY);
}

/**
 * `url` with the token as its `page` query parameter, for what a browser requests
 * without headers of ours: the event stream's WebSocket and file links.
 */
export function withPage(url: string, token: string | null = pageToken()): string {
  if (!token) return url;
  return `${url}${url.includes('?') ? '&' : '?'}page=${token}`;
}
