// Files on their way from this browser to the node, at the foot of a
// conversation where their messages will appear: waiting their turn, uploading
// (with a bar), or failed (with the reason). Each can be cancelled; a failed one
// can be retried. Once the node has queued a file it leaves this list and its
// message takes its place.

import type { Upload, UploadState } from '../hooks/useUploads';
import { formatSize, percent } from '../lib/format';
import { FileIcon } from './icons';
import { ProgressBar } from './ProgressBar';

interface Props {
  uploads: readonly Upload[];
  onCancel: (id: number) => void;
  onRetry: (id: number) => void;
}

/** What the upload is doing, in words. */
function stateText(state: UploadState): string {
  switch (state.kind) {
    case 'queued':
      return 'Waiting to upload';
    case 'uploading':
      return state.sent < state.total ? `Uploading… ${percent(state.sent, state.total)}%` : 'Preparing to send…';
    case 'failed':
      return 'Not sent';
  }
}

export function PendingUploads({ uploads, onCancel, onRetry }: Props) {
  if (uploads.length === 0) return null;
  return (
    <ol className="message-list uploads" aria-label="Files being sent">
      {uploads.map(({ id, file, caption, state }) => (
        <li key={id} className={`message message-out message-file${state.kind === 'failed' ? ' message-failed' : ''}`}>
          <div className="bubble">
            <div className="attachment" data-upload={state.kind}>
              <span className="attachment-icon">
                <FileIcon />
              </span>
              <div className="attachment-main">
                <span className="attachment-name" title={file.name}>
                  {file.name}
                </span>
                <span className="attachment-info">
                  {formatSize(file.size)} · <span className="attachment-status">{stateText(state)}</span>
                </span>
                {state.kind === 'uploading' && (
                  <ProgressBar label={`Uploading ${file.name}`} done={state.sent} total={state.total} />
                )}
                {state.kind === 'failed' && (
                  <span role="alert" className="error attachment-error">
                    {state.message}
                  </span>
                )}
              </div>
              <span className="upload-actions">
                {state.kind === 'failed' && (
                  <button type="button" className="button small" onClick={() => onRetry(id)} aria-label={`Retry uploading ${file.name}`}>
                    Retry
                  </button>
                )}
                <button
                  type="button"
                  className="button small"
                  onClick={() => onCancel(id)}
                  aria-label={state.kind === 'failed' ? `Discard ${file.name}` : `Cancel uploading ${file.name}`}
                >
                  {state.kind === 'failed' ? 'Discard' : 'Cancel'}
                </button>
              </span>
            </div>
            {caption && <p className="text">{caption}</p>}
          </div>
        </li>
      ))}
    </ol>
  );
}
