import { describe, expect, it, vi } from 'vitest';
import { ApiError, createClient, NETWORK_UNREACHABLE, NotSignedInError } from '../src/api/client';
import type { NodeStatus } from '../src/api/types';
import { apiError, BOB, json, mockFetch } from './helpers';

const status: NodeStatus = {
  address: BOB,
  peer_id: '12D3KooW',
  listen_addrs: [],
  connected_peers: 2,
  outbox: 0,
  version: '0.1.0',
  peers: [],
};

describe('API client', () => {
  it('calls the same-origin API with the session cookie and parses the answer', async () => {
    const { fetch, calls } = mockFetch({ 'GET /v1/status': json(200, status) });
    const api = createClient({ fetch });

    await expect(api.status()).resolves.toEqual(status);

    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe('/v1/status');
    expect(calls[0]?.init?.credentials).toBe('same-origin');
    // No token of any kind travels in JS.
    expect(JSON.stringify(calls[0]?.init?.headers)).not.toMatch(/authorization/i);
  });

  it('uses the global fetch when none is given', async () => {
    const { fetch } = mockFetch({ 'GET /v1/contacts': json(200, []) });
    vi.stubGlobal('fetch', fetch);
    await expect(createClient().contacts()).resolves.toEqual([]);
    vi.unstubAllGlobals();
  });

  it('turns an error body into an ApiError carrying its code and message', async () => {
    const message = '"tigr" (word 1) is not an address word; did you mean "tiger"?';
    const { fetch } = mockFetch({ 'POST /v1/contacts': apiError(400, 'invalid_address', message) });
    const api = createClient({ fetch });

    const error = await api.addContact('tigr-mosaic-lemon-wafer').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ApiError);
    expect(error).not.toBeInstanceOf(NotSignedInError);
    expect(error).toMatchObject({ status: 400, code: 'invalid_address', message });
  });

  it('describes an error answer that is not JSON', async () => {
    const { fetch } = mockFetch({
      'GET /v1/status': new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    });
    const error = await createClient({ fetch }).status().catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, code: 'http_error', message: 'The node answered 502 Bad Gateway.' });
  });

  it('reports 401 as not signed in, once per request', async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch({
      'GET /v1/status': apiError(401, 'unauthorized', 'a valid bearer token is required'),
    });
    const api = createClient({ fetch, onUnauthorized });

    const error = await api.status().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NotSignedInError);
    expect(error).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('does not call onUnauthorized for other errors', async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch({ 'GET /v1/status': apiError(503, 'shutting_down', 'the node is stopping') });
    await createClient({ fetch, onUnauthorized }).status().catch(() => undefined);
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('says the node is unreachable when fetch itself fails', async () => {
    const fetch = vi.fn().mockRejectedValue(new TypeError('Failed to fetch')) as unknown as typeof globalThis.fetch;
    const error = await createClient({ fetch }).status().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: NETWORK_UNREACHABLE });
    expect((error as Error).message).toMatch(/cannot reach your node/i);
  });

  it('pages history with limit and before', async () => {
    const { fetch, calls } = mockFetch({ 'GET /v1/conversations/engine-mosaic-zone-zoom/messages': json(200, []) });
    const api = createClient({ fetch });

    await api.history(BOB, { limit: 50, before: 'ab'.repeat(16) });
    await api.history(BOB);

    expect(calls[0]?.url).toBe(`/v1/conversations/${BOB}/messages?limit=50&before=${'ab'.repeat(16)}`);
    expect(calls[1]?.url).toBe(`/v1/conversations/${BOB}/messages`);
  });

  it('sends JSON bodies and escapes path segments', async () => {
    const { fetch, calls } = mockFetch({
      'POST /v1/messages': json(202, { id: '1'.repeat(32), status: 'queued' }),
      'POST /v1/contacts': json(201, {}),
      'GET /v1/contacts/a%2Fb/safety-number': json(200, { safety_number: '1' }),
    });
    const api = createClient({ fetch });

    await expect(api.send(BOB, 'hi')).resolves.toEqual({ id: '1'.repeat(32), status: 'queued' });
    await api.addContact(BOB);
    await api.addContact(BOB, 'Bob');
    await api.safetyNumber('a/b');

    expect(calls[0]?.body).toEqual({ to: BOB, text: 'hi' });
    expect((calls[0]?.init?.headers as Record<string, string>)['Content-Type']).toBe('application/json');
    expect(calls[1]?.body).toEqual({ address: BOB });
    expect(calls[2]?.body).toEqual({ address: BOB, name: 'Bob' });
    expect(calls[3]?.url).toBe('/v1/contacts/a%2Fb/safety-number');
  });
});
