// The identity routes of the API client (decision 0013) and 423 handling.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, createClient, NotSignedInError } from '../src/api/client';
import { parseEvent } from '../src/hooks/useEvents';
import { ALICE, apiError, BOB, json, mockFetch, MockXhr, testFile } from './helpers';

const UNLOCKED = { state: 'unlocked', address: ALICE, name: 'Alice' };
const LOCKED = { state: 'locked', address: null, name: null };

afterEach(() => vi.unstubAllGlobals());

describe('identity routes', () => {
  it('reads the identity state', async () => {
    const { fetch, calls } = mockFetch({ 'GET /v1/identity': json(200, LOCKED) });
    await expect(createClient({ fetch }).identity()).resolves.toEqual(LOCKED);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual(['GET /v1/identity']);
  });

  it('creates an identity with the passphrase, and the name only when given', async () => {
    const { fetch, calls } = mockFetch({ 'POST /v1/identity': json(201, UNLOCKED) });
    const api = createClient({ fetch });

    await expect(api.createIdentity('correct horse', 'Alice')).resolves.toEqual(UNLOCKED);
    await api.createIdentity('correct horse');

    expect(calls[0]?.body).toEqual({ passphrase: 'correct horse', name: 'Alice' });
    expect(calls[1]?.body).toEqual({ passphrase: 'correct horse' });
    expect((calls[0]?.init?.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('unlocks, locks and logs out on their routes', async () => {
    const { fetch, calls } = mockFetch({
      'POST /v1/unlock': json(200, UNLOCKED),
      'POST /v1/lock': json(200, LOCKED),
      'POST /v1/logout': new Response(null, { status: 204 }),
    });
    const api = createClient({ fetch });

    await expect(api.unlock('correct horse')).resolves.toEqual(UNLOCKED);
    await expect(api.lock()).resolves.toEqual(LOCKED);
    await expect(api.logout()).resolves.toBeUndefined();

    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ['POST', '/v1/unlock', { passphrase: 'correct horse' }],
      ['POST', '/v1/lock', undefined],
      ['POST', '/v1/logout', undefined],
    ]);
  });

  it('changes the passphrase with the current and the new one', async () => {
    const { fetch, calls } = mockFetch({ 'POST /v1/passphrase': json(200, { changed: true }) });
    await expect(createClient({ fetch }).changePassphrase('correct horse', 'tangerine walrus')).resolves.toEqual({
      changed: true,
    });
    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ['POST', '/v1/passphrase', { old: 'correct horse', new: 'tangerine walrus' }],
    ]);
  });

  it('rejects a wrong current passphrase with its code, and does not call onLocked', async () => {
    const onLocked = vi.fn();
    const { fetch } = mockFetch({
      'POST /v1/passphrase': apiError(403, 'wrong_passphrase', 'wrong passphrase'),
    });
    const error = await createClient({ fetch, onLocked })
      .changePassphrase('nope', 'tangerine walrus')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 403, code: 'wrong_passphrase' });
    expect(onLocked).not.toHaveBeenCalled();
  });

  it('maps the identity errors to their codes', async () => {
    const { fetch } = mockFetch({
      'POST /v1/unlock': apiError(403, 'wrong_passphrase', 'wrong passphrase'),
      'POST /v1/identity': apiError(409, 'identity_exists', 'this node already has an identity'),
      'POST /v1/lock': apiError(409, 'no_identity', 'there is no identity to lock'),
    });
    const api = createClient({ fetch });

    const wrong = await api.unlock('nope').catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ApiError);
    expect(wrong).toMatchObject({ status: 403, code: 'wrong_passphrase' });
    await expect(api.createIdentity('correct horse')).rejects.toMatchObject({ status: 409, code: 'identity_exists' });
    await expect(api.lock()).rejects.toMatchObject({ status: 409, code: 'no_identity' });
  });
});

describe('a locked node', () => {
  it('calls onLocked once per 423 and rejects with the locked code', async () => {
    const onLocked = vi.fn();
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch({ 'GET /v1/contacts': apiError(423, 'locked', 'the identity is locked') });

    const error = await createClient({ fetch, onLocked, onUnauthorized }).contacts().catch((e: unknown) => e);

    expect(error).toMatchObject({ status: 423, code: 'locked', message: 'the identity is locked' });
    expect(error).not.toBeInstanceOf(NotSignedInError);
    expect(onLocked).toHaveBeenCalledTimes(1);
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('does not call onLocked for other errors or a 401', async () => {
    const onLocked = vi.fn();
    const { fetch } = mockFetch({
      'POST /v1/unlock': apiError(403, 'wrong_passphrase', 'wrong passphrase'),
      'GET /v1/status': apiError(401, 'unauthorized', 'no session'),
    });
    const api = createClient({ fetch, onLocked });
    await api.unlock('nope').catch(() => undefined);
    await api.status().catch(() => undefined);
    expect(onLocked).not.toHaveBeenCalled();
  });

  it('calls onLocked for an upload answered 423', async () => {
    MockXhr.install();
    const onLocked = vi.fn();
    const pending = createClient({ onLocked }).upload(BOB, testFile());
    MockXhr.latest().respond(423, { error: { code: 'locked', message: 'the identity is locked' } });
    await expect(pending).rejects.toMatchObject({ status: 423, code: 'locked' });
    expect(onLocked).toHaveBeenCalledTimes(1);
  });

  it('parses the locked event', () => {
    expect(parseEvent('{"type":"locked"}')).toEqual({ type: 'locked' });
  });
});
