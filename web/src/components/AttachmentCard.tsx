// A file inside a message: its name and size, how far its transfer is (a bar while
// it moves, live from `file_progress`), and what can be done with it — save another
// copy of a received file the node saved, download one we sent, or ask the node to fetch it when it did not on its own.

import { useState } from 'react';
import { errorMessage, fileContentUrl } from '../api/client';
import type { FileStatus } from '../api/types';
import type { LiveAttachment } from '../hooks/useTransfers';
import { downloadable } from '../hooks/useTransfers';
import { formatSize, percent } from '../lib/format';
import { paceText } from '../lib/rate';
import { DownloadIcon, FileIcon } from './icons';
import { ProgressBar } from './ProgressBar';

interface Props {
  attachment: LiveAttachment;
  direction: 'in' | 'out';
  peerName: string;
  /** Asks the node to fetch a received file now; rejects with the error to show. */
  onFetch: () => Promise<void>;
}

/** Received files the user may fetch by hand. */
const FETCHABLE: readonly FileStatus[] = ['too_large', 'failed'];

/** What the transfer is doing, in words, with its speed and time left once known. */
export function transferText(a: LiveAttachment, direction: 'in' | 'out', peerName: string): string {
  const words = stateText(a, direction, peerName);
  const done = direction === 'out' && a.fetched !== undefined ? a.fetched : a.progress;
  const moving =
    direction === 'in'
      ? a.status === 'downloading'
      : (a.fetched !== undefined && a.fetched > 0 && a.fetched < a.size) ||
        (a.status === 'uploading' && a.progress > 0 && a.progress < a.size);
  const pace = moving ? paceText(done, a.size, a.rate) : '';
  return pace ? `${words} · ${pace}` : words;
}

function stateText(a: LiveAttachment, direction: 'in' | 'out', peerName: string): string {
  if (direction === 'out') {
    if (a.fetched !== undefined && a.fetched >= a.size) return `Downloaded by ${peerName}`;
    if (a.fetched !== undefined && a.fetched > 0) return `${peerName} is downloading… ${percent(a.fetched, a.size)}%`;
    switch (a.status) {
      case 'uploading':
        return a.progress > 0 && a.progress < a.size
          ? `Leaving it in mailboxes for ${peerName}… ${percent(a.progress, a.size)}%`
          : `Leaving it in mailboxes for ${peerName}…`;
      case 'stored':
        return `Waiting in mailboxes for ${peerName}`;
      case 'fetched':
        return `Downloaded by ${peerName}`;
      default:
        return `Offered to ${peerName}`;
    }
  }
  switch (a.status) {
    case 'pending':
      return 'Waiting to download';
    case 'downloading':
      return `Downloading… ${percent(a.progress, a.size)}%`;
    case 'done':
      // The node saved it in its downloads folder (issue 23 item 8: "Downloaded"
      // next to a Download button read as if nothing was left to do, or undone).
      return 'Saved';
    case 'too_large':
      return 'Not downloaded: larger than your automatic download size';
    case 'failed':
      return a.error ? `Download failed: ${a.error}` : 'Download failed';
    default:
      return '';
  }
}

export function AttachmentCard({ attachment: a, direction, peerName, onFetch }: Props) {
  const [fetching, setFetching] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const fetchNow = async () => {
    setFetching(true);
    setError(null);
    try {
      await onFetch();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setFetching(false);
    }
  };

  const moving =
    direction === 'in'
      ? a.status === 'pending' || a.status === 'downloading'
      : a.fetched !== undefined && a.fetched < a.size;
  const done = direction === 'in' ? a.progress : (a.fetched ?? 0);
  const status = transferText(a, direction, peerName);

  return (
    <div className="attachment" data-file-id={a.file_id} data-status={a.status}>
      <span className="attachment-icon">
        <FileIcon />
      </span>
      <div className="attachment-main">
        <span className="attachment-name" title={a.name}>
          {a.name}
        </span>
        <span className="attachment-info">
          {formatSize(a.size)} · <span className="attachment-status">{status}</span>
        </span>
        {moving && (
          <ProgressBar
            label={direction === 'in' ? `Downloading ${a.name}` : `${peerName} downloading ${a.name}`}
            done={done}
            total={a.size}
          />
        )}
        {error && (
          <span role="alert" className="error attachment-error">
            {error}
          </span>
        )}
      </div>
      {downloadable(a, direction) ? (
        <a
          className="button small attachment-action"
          href={fileContentUrl(a.file_id)}
          download={a.name}
          aria-label={direction === 'in' ? `Save again: ${a.name}` : `Download ${a.name}`}
          title={direction === 'in' && a.path ? `Saved by your node as ${a.path}` : undefined}
        >
          <DownloadIcon /> {direction === 'in' ? 'Save again' : 'Download'}
        </a>
      ) : (
        FETCHABLE.includes(a.status) && (
          <button
            type="button"
            className="button small attachment-action"
            onClick={() => void fetchNow()}
            disabled={fetching}
            aria-label={`Fetch ${a.name}${a.status === 'failed' ? ' again' : ''}`}
          >
            {fetching ? 'Fetching…' : a.status === 'failed' ? 'Fetch again' : 'Fetch'}
          </button>
        )
      )}
    </div>
  );
}
