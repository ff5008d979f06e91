import { describe, expect, it } from 'vitest';
import { adoptPageToken, forgetPageToken, pageToken, withPage } from '../src/api/page';

function memoryStore() {
  const items = new Map<string, string>();
  return {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
    removeItem: (k: string) => void items.delete(k),
  };
}

const TOKEN = 'ab'.repeat(32);

describe('the page token', () => {
  it('is taken from the login redirect fragment, kept, and cleared from the address', () => {
    const store = memoryStore();
    const replaced: string[] = [];
    const history = { replaceState: (_: unknown, __: string, url?: string | URL | null) => void replaced.push(String(url)) };
    adoptPageToken({ hash: `#page=${TOKEN}`, pathname: '/', search: '' }, history, store);
    expect(pageToken(store)).toBe(TOKEN);
    expect(replaced).toEqual(['/']);
    forgetPageToken(store);
    expect(pageToken(store)).toBeNull();
  });

  it('ignores any other fragment and keeps what it had', () => {
    const store = memoryStore();
    store.setItem('communitas-page', TOKEN);
    const history = { replaceState: () => { throw new Error('must not touch the address'); } };
    for (const hash of ['', '#page=', '#page=xyz', `#page=${TOKEN}&x=1`, '#other']) {
      adoptPageToken({ hash, pathname: '/', search: '' }, history, store);
    }
    expect(pageToken(store)).toBe(TOKEN);
  });

  it('rides as a query parameter where no header can be sent', () => {
    expect(withPage('/v1/files/x/content', TOKEN)).toBe(`/v1/files/x/content?page=${TOKEN}`);
    expect(withPage('ws://h/v1/events?a=1', TOKEN)).toBe(`ws://h/v1/events?a=1&page=${TOKEN}`);
    expect(withPage('/v1/events', null)).toBe('/v1/events');
  });
});
