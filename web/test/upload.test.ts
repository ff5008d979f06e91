import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, createClient, fileContentUrl, NotSignedInError, UPLOAD_BROKEN, UPLOAD_CANCELLED } from '../src/api/client';
import { BOB, MockXhr, testFile } from './helpers';

const QUEUED = { id: 'a'.repeat(32), file_id: 'b'.repeat(32), status: 'queued' };

beforeEach(() => MockXhr.install());
afterEach(() => vi.unstubAllGlobals());

describe('file upload', () => {
  it('streams the raw file to /v1/files/upload with the recipient, name and caption', async () => {
    const file = testFile('holiday photo.jpg', 4096, 'image/jpeg');
    const pending = createClient().upload(BOB, file, { text: 'the beach & us' });
    const xhr = MockXhr.latest();

    expect(xhr.method).toBe('POST');
    const url = new URL(xhr.url, 'http://node');
    expect(url.pathname).toBe('/v1/files/upload');
    expect(Object.fromEntries(url.searchParams)).toEqual({ to: BOB, name: 'holiday photo.jpg', text: 'the beach & us' });
    expect(xhr.body).toBe(file);
    expect(xhr.headers['Content-Type']).toBe('application/octet-stream');
    expect(JSON.stringify(xhr.headers)).not.toMatch(/authorization/i);

    xhr.respond(202, QUEUED);
    await expect(pending).resolves.toEqual(QUEUED);
  });

  it('leaves an empty caption out', () => {
    void createClient().upload(BOB, testFile());
    expect(new URL(MockXhr.latest().url, 'http://node').searchParams.has('text')).toBe(false);
  });

  it('reports upload progress as the browser sends', async () => {
    const onProgress = vi.fn();
    const pending = createClient().upload(BOB, testFile('a.bin', 1000), { onProgress });
    const xhr = MockXhr.latest();
    xhr.progress(250, 1000);
    xhr.progress(1000, 1000);
    xhr.respond(202, QUEUED);
    await pending;
    expect(onProgress.mock.calls).toEqual([
      [250, 1000],
      [1000, 1000],
    ]);
  });

  it('rejects with the API error code and message', async () => {
    const pending = createClient().upload(BOB, testFile());
    MockXhr.latest().respond(413, { error: { code: 'file_too_large', message: 'the file is 9 bytes; the limit is 8 bytes' } });
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 413, code: 'file_too_large', message: 'the file is 9 bytes; the limit is 8 bytes' });
  });

  it('describes an answer that is not an error body', async () => {
    const pending = createClient().upload(BOB, testFile());
    MockXhr.latest().respond(502, '<html>bad gateway</html>');
    await expect(pending).rejects.toMatchObject({ code: 'http_error', message: 'The node answered 502.' });
  });

  it('signals a 401 like every other request', async () => {
    const onUnauthorized = vi.fn();
    const pending = createClient({ onUnauthorized }).upload(BOB, testFile());
    MockXhr.latest().respond(401, { error: { code: 'unauthorized', message: 'sign in' } });
    await expect(pending).rejects.toBeInstanceOf(NotSignedInError);
    expect(onUnauthorized).toHaveBeenCalledOnce();
  });

  it('rejects with upload_broken when the connection breaks', async () => {
    const pending = createClient().upload(BOB, testFile());
    MockXhr.latest().fail();
    await expect(pending).rejects.toMatchObject({ code: UPLOAD_BROKEN });
  });

  it('cancels through the signal', async () => {
    const controller = new AbortController();
    const pending = createClient().upload(BOB, testFile(), { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: UPLOAD_CANCELLED });
    expect(MockXhr.latest().aborted).toBe(true);
  });

  it('links to a file’s content by its id', () => {
    expect(fileContentUrl('c'.repeat(32))).toBe(`/v1/files/${'c'.repeat(32)}/content`);
  });
});
