// Files being sent: the app's one queue of uploads to the node, for every
// conversation. It lives in the Messenger, not in a conversation, so switching
// conversations neither cancels an upload nor hides its progress on return.
//
// Each upload has an id, goes `queued` → `uploading` → (gone, or `failed`), and
// can be cancelled (dropped from the queue, its request aborted) or, once failed,
// retried. When the node answers (`FileQueued`), the upload leaves the queue and
// `onSent` is told, so the message takes its place in the conversation.
//
// One upload runs at a time, across the whole app. The node is usually on the same
// machine, so running two at once would not finish sooner: it would split the same
// disk and hashing work, show two bars at half speed, and let a later file overtake
// an earlier one, so the messages would arrive in another order than picked (and a
// caption sent with the first file could land after the second).

import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, UPLOAD_CANCELLED } from '../api/client';
import { useApi } from '../api/session';
import type { Address, FileQueued } from '../api/types';
import { uploadErrorText } from '../lib/uploadError';

export type UploadState =
  /** Waiting for the uploads before it. */
  | { kind: 'queued' }
  /** Bytes of the request body sent so far, of `total`. */
  | { kind: 'uploading'; sent: number; total: number }
  /** Why it failed, in the user's terms; it stays until retried or cancelled. */
  | { kind: 'failed'; message: string };

export interface Upload {
  id: number;
  peer: Address;
  file: File;
  /** Sent with the file (may be empty). */
  caption: string;
  state: UploadState;
}

/** The node has queued the file's message. */
export type OnSent = (upload: Upload, queued: FileQueued) => void;

export function useUploads(onSent?: OnSent) {
  const api = useApi();
  const [uploads, setUploads] = useState<Upload[]>([]);
  const nextId = useRef(1);
  // The running upload and how to abort it; at most one (see the header).
  const running = useRef<{ id: number; abort: AbortController } | null>(null);
  const sent = useRef(onSent);
  useEffect(() => {
    sent.current = onSent;
  });

  const update = useCallback((id: number, state: UploadState) => {
    setUploads((all) => all.map((u) => (u.id === id ? { ...u, state } : u)));
  }, []);

  const remove = useCallback((id: number) => {
    setUploads((all) => all.filter((u) => u.id !== id));
  }, []);

  const run = useCallback(
    async (upload: Upload) => {
      const abort = new AbortController();
      running.current = { id: upload.id, abort };
      update(upload.id, { kind: 'uploading', sent: 0, total: upload.file.size });
      try {
        const queued = await api.upload(upload.peer, upload.file, {
          text: upload.caption,
          signal: abort.signal,
          onProgress: (bytes, total) => update(upload.id, { kind: 'uploading', sent: bytes, total }),
        });
        remove(upload.id);
        sent.current?.(upload, queued);
      } catch (e) {
        if (e instanceof ApiError && e.code === UPLOAD_CANCELLED) remove(upload.id);
        else update(upload.id, { kind: 'failed', message: uploadErrorText(e, upload.file) });
      } finally {
        // Cleared in the same tick as the state change above, which wakes the
        // effect below to start the next one.
        running.current = null;
      }
    },
    [api, update, remove],
  );

  // Starts the oldest queued upload whenever none runs.
  useEffect(() => {
    if (running.current) return;
    const next = uploads.find((u) => u.state.kind === 'queued');
    if (next) void run(next);
  }, [uploads, run]);

  // Signing out (or leaving the app) ends every upload.
  useEffect(() => () => running.current?.abort.abort(), []);

  /** Queues `files` for `peer`, in order; the caption goes with the first only. */
  const add = useCallback((peer: Address, files: File[], caption: string) => {
    const added = files.map((file, i) => ({
      id: nextId.current++,
      peer,
      file,
      caption: i === 0 ? caption : '',
      state: { kind: 'queued' } as const,
    }));
    setUploads((all) => [...all, ...added]);
  }, []);

  /** Stops an upload and drops it: aborts it if running, or takes it off the queue. */
  const cancel = useCallback(
    (id: number) => {
      if (running.current?.id === id) running.current.abort.abort();
      else remove(id);
    },
    [remove],
  );

  /** Queues a failed upload again. */
  const retry = useCallback((id: number) => {
    setUploads((all) => all.map((u) => (u.id === id && u.state.kind === 'failed' ? { ...u, state: { kind: 'queued' } } : u)));
  }, []);

  const busy = uploads.some((u) => u.state.kind !== 'failed');

  // Closing the tab would cut the uploads off: the browser asks first.
  useEffect(() => {
    if (!busy) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      // Older browsers show the dialog only when this is set.
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [busy]);

  return { uploads, add, cancel, retry, busy };
}

export type Uploads = ReturnType<typeof useUploads>;
