// Files on the move: the live state of every transfer, keyed by file id, from the
// node's `file_progress` events and from "fetch now" answers.
//
// Kept apart from the messages because a transfer can report before its message is
// on screen (a small file fetched before the upload's answer), and because a sent
// file's progress (bytes the recipient has fetched) is not part of its attachment.

import { useCallback, useState } from 'react';
import { useApi } from '../api/session';
import type { Attachment, FileId, FileStatus, ServerEvent } from '../api/types';
import { nextPace, type Pace } from '../lib/rate';

/** What is known of one transfer right now. */
export interface Transfer {
  direction: 'in' | 'out';
  /** Received: bytes on disk. Sent: bytes the recipient has fetched. */
  bytes: number;
  size: number;
  status: FileStatus;
  error?: string;
  /** How fast it moves, once two progress events a little apart have come. */
  pace?: Pace;
}

export type Transfers = Readonly<Record<FileId, Transfer>>;

/** An attachment as it stands with the newest news of its transfer. */
export interface LiveAttachment extends Attachment {
  /** Sent files: bytes the recipient has fetched, once it has started. */
  fetched?: number;
  /** Bytes per second while it moves, once measured. */
  rate?: number;
}

/** Joins an attachment (from history or an event) with its live transfer. A received
 * file that is done stays done: an older progress event cannot undo it. */
export function liveAttachment(attachment: Attachment, direction: 'in' | 'out', transfer: Transfer | undefined): LiveAttachment {
  if (!transfer) return attachment;
  if (direction === 'out') {
    // Bytes left with the mailbox servers are not bytes the recipient has (issue 23
    // item 2: a file that had only reached the holders read "Downloaded by").
    if (transfer.status === 'uploading' || transfer.status === 'stored') {
      if (attachment.status === 'fetched') return attachment;
      return { ...attachment, status: transfer.status, progress: transfer.bytes, rate: transfer.pace?.rate };
    }
    return {
      ...attachment,
      status: transfer.status === 'fetched' ? 'fetched' : attachment.status,
      fetched: transfer.bytes,
      rate: transfer.pace?.rate,
    };
  }
  if (attachment.status === 'done') return attachment;
  return {
    ...attachment,
    status: transfer.status,
    progress: transfer.status === 'done' ? attachment.size : transfer.bytes,
    error: transfer.status === attachment.status ? (transfer.error ?? attachment.error) : transfer.error,
    rate: transfer.status === 'downloading' ? transfer.pace?.rate : undefined,
  };
}

/** The bytes can be downloaded: a received file once done, or one we sent. */
export function downloadable(attachment: Attachment, direction: 'in' | 'out'): boolean {
  return direction === 'out' || attachment.status === 'done';
}

export function useTransfers() {
  const api = useApi();
  const [transfers, setTransfers] = useState<Transfers>({});

  const record = useCallback((fileId: FileId, transfer: Transfer) => {
    setTransfers((all) => ({ ...all, [fileId]: transfer }));
  }, []);

  const handleEvent = useCallback((event: ServerEvent) => {
    if (event.type !== 'file_progress') return;
    const now = performance.now();
    setTransfers((all) => {
      const before = all[event.file_id];
      // A new phase (uploading, then the recipient fetching) measures afresh.
      const same = before && before.status === event.status ? before.pace : undefined;
      const pace = nextPace(same, event.bytes, now);
      const transfer: Transfer = { direction: event.direction, bytes: event.bytes, size: event.size, status: event.status };
      return { ...all, [event.file_id]: { ...transfer, pace } };
    });
  }, []);

  /** Asks the node to fetch a received file now; rejects with the API's error. */
  const fetchFile = useCallback(
    async (fileId: FileId) => {
      const a = await api.fetchFile(fileId);
      record(fileId, { direction: 'in', bytes: a.progress, size: a.size, status: a.status, error: a.error });
    },
    [api, record],
  );

  return { transfers, handleEvent, fetchFile };
}
