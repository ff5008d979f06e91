// A conversation's messages, newest at the bottom. Scrolling near the top loads the
// previous page (a button does the same for keyboards and short histories), and the
// view keeps its place when older messages are put above.

import { Fragment, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { errorMessage } from '../api/client';
import type { FileId, HistoryEntry, MessageId } from '../api/types';
import { liveAttachment, type Transfers } from '../hooks/useTransfers';
import { formatDay, formatTime, isoTime, sameDay } from '../lib/format';
import { linkify } from '../lib/linkify';
import { waitingBefore } from '../lib/order';
import type { Upload } from '../hooks/useUploads';
import { AttachmentCard } from './AttachmentCard';
import { PendingUploads } from './PendingUploads';
import { StatusMark } from './StatusMark';

/** Pixels from the top at which the previous page is fetched. */
const LOAD_OLDER_AT = 80;
/** Within this many pixels of the bottom, new messages scroll into view. */
const STICK_TO_BOTTOM = 120;
/** How long "waiting for earlier messages" shows above a message that came before
 * ones written earlier (issue 23 item 1: briefly, never blocking). */
export const WAITING_NOTE_MS = 10_000;

interface Props {
  peerName: string;
  messages: HistoryEntry[];
  /** Messages that arrived while the conversation was open. */
  fresh?: ReadonlySet<MessageId>;
  loading: boolean;
  loadingOlder: boolean;
  hasMore: boolean;
  onLoadOlder: () => void;
  onRetry: (id: MessageId) => Promise<void>;
  /** Live transfers by file id (`file_progress` events). */
  transfers: Transfers;
  /** Asks the node to fetch a received file now. */
  onFetchFile: (id: FileId) => Promise<void>;
  /** Files of this conversation still on their way to the node, shown last. */
  uploads?: readonly Upload[];
  onCancelUpload?: (id: number) => void;
  onRetryUpload?: (id: number) => void;
}

const NONE: readonly Upload[] = [];
const NO_IDS: ReadonlySet<MessageId> = new Set();
const nothing = () => {};

export function MessageList({
  peerName,
  messages,
  fresh = NO_IDS,
  loading,
  loadingOlder,
  hasMore,
  onLoadOlder,
  onRetry,
  transfers,
  onFetchFile,
  uploads = NONE,
  onCancelUpload = nothing,
  onRetryUpload = nothing,
}: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const waiting = useMemo(() => waitingBefore(messages, fresh), [messages, fresh]);
  // A message arrived while the user was reading further up (issue 23 item 8).
  const [newBelow, setNewBelow] = useState(false);
  // The scroll geometry and the ends of the list as of the last commit.
  const before = useRef({ height: 0, top: 0, atBottom: true, first: '', last: '', uploads: 0 });

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const first = messages[0]?.id ?? '';
    const last = messages[messages.length - 1]?.id ?? '';
    const prev = before.current;
    if (prev.last && last === prev.last && first !== prev.first) {
      // Older messages were put on top: stay on the message that was in view.
      el.scrollTop = prev.top + (el.scrollHeight - prev.height);
    } else if (last !== prev.last) {
      const newest = messages[messages.length - 1];
      if (!prev.last || prev.atBottom || newest?.direction === 'out') el.scrollTop = el.scrollHeight;
      else setNewBelow(true);
    } else if (uploads.length > prev.uploads) {
      // The user just sent files: show them.
      el.scrollTop = el.scrollHeight;
    }
    before.current = { height: el.scrollHeight, top: el.scrollTop, atBottom: isAtBottom(el), first, last, uploads: uploads.length };
  }, [messages, uploads.length]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    before.current = { ...before.current, height: el.scrollHeight, top: el.scrollTop, atBottom: isAtBottom(el) };
    if (before.current.atBottom) setNewBelow(false);
    if (el.scrollTop < LOAD_OLDER_AT && hasMore && !loadingOlder) onLoadOlder();
  };

  const toBottom = () => {
    const el = scroller.current;
    if (!el) return;
    el.scrollTop = el.scrollHeight;
    setNewBelow(false);
  };

  return (
    <div className="messages-pane">
      <div
        ref={scroller}
        className="messages"
        onScroll={onScroll}
        tabIndex={0}
        role="region"
        aria-label={`Messages with ${peerName}`}
        aria-busy={loading || loadingOlder}
      >
        {hasMore ? (
          <button type="button" className="button load-older" onClick={onLoadOlder} disabled={loadingOlder}>
            {loadingOlder ? 'Loading older messages…' : 'Load older messages'}
          </button>
        ) : (
          messages.length > 0 && <p className="history-start">This is the start of your conversation with {peerName}.</p>
        )}
        {loading && messages.length === 0 && <p className="muted center">Loading messages…</p>}
        {!loading && messages.length === 0 && uploads.length === 0 && (
          <p className="empty-conversation">No messages yet. Say hello to {peerName}.</p>
        )}
        <ol className="message-list">
          {messages.map((m, i) => {
            const prev = messages[i - 1];
            const newDay = !prev || !sameDay(new Date(prev.timestamp), new Date(m.timestamp));
            return (
              <Fragment key={m.id}>
                {newDay && (
                  <li className="day" aria-hidden="true">
                    {formatDay(m.timestamp)}
                  </li>
                )}
                {waiting.has(m.id) && <WaitingNote />}
                {m.system ? (
                  <SystemLine line={m.system} peerName={peerName} />
                ) : (
                  <Message
                  message={m}
                  peerName={peerName}
                  onRetry={onRetry}
                  transfers={transfers}
                  onFetchFile={onFetchFile}
                />
                )}
              </Fragment>
            );
          })}
        </ol>
        <PendingUploads uploads={uploads} onCancel={onCancelUpload} onRetry={onRetryUpload} />
      </div>
      {newBelow && (
        <button type="button" className="button small new-below" onClick={toBottom}>
          New messages <span aria-hidden="true">↓</span>
        </button>
      )}
    </div>
  );
}

/** Earlier messages of the peer are still on their way; gone after a few seconds
 * (or as soon as they arrive, when the list no longer has the gap). */
function WaitingNote() {
  const [shown, setShown] = useState(true);
  useEffect(() => {
    const timer = setTimeout(() => setShown(false), WAITING_NOTE_MS);
    return () => clearTimeout(timer);
  }, []);
  if (!shown) return null;
  return (
    <li className="waiting-note" role="status">
      Waiting for earlier messages…
    </li>
  );
}

/** What a line the node wrote itself says (history's `system` code). */
export function systemText(line: NonNullable<HistoryEntry['system']>, peerName: string): string {
  switch (line) {
    case 'session_reset':
      return `${peerName}'s device had lost your secure session. A new one was started, and messages it had not received were sent again.`;
  }
}

function SystemLine({ line, peerName }: { line: NonNullable<HistoryEntry['system']>; peerName: string }) {
  return (
    <li className="system-line" role="note">
      {systemText(line, peerName)}
    </li>
  );
}

function preview(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function isAtBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight < STICK_TO_BOTTOM;
}

interface MessageProps {
  message: HistoryEntry;
  peerName: string;
  onRetry: (id: MessageId) => Promise<void>;
  transfers: Transfers;
  onFetchFile: (id: FileId) => Promise<void>;
}

function Message({ message: m, peerName, onRetry, transfers, onFetchFile }: MessageProps) {
  const [retrying, setRetrying] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const out = m.direction === 'out';
  const attachment = m.attachment;

  const retry = async () => {
    setRetrying(true);
    setError(null);
    try {
      await onRetry(m.id);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setRetrying(false);
    }
  };

  return (
    <li
      className={`message ${out ? 'message-out' : 'message-in'}${m.status === 'failed' ? ' message-failed' : ''}${attachment ? ' message-file' : ''}`}
      data-id={m.id}
    >
      <div className="bubble">
        <span className="sr-only">{out ? 'You' : peerName}: </span>
        {attachment && (
          <AttachmentCard
            attachment={liveAttachment(attachment, m.direction, transfers[attachment.file_id])}
            direction={m.direction}
            peerName={peerName}
            onFetch={() => onFetchFile(attachment.file_id)}
          />
        )}
        {(m.text || !attachment) && (
          <p className="text" dir="auto">
            {linkify(m.text)}
          </p>
        )}
        <span className="meta">
          <time dateTime={isoTime(m.timestamp)} title={new Date(m.timestamp).toLocaleString()}>
            {formatTime(m.timestamp)}
          </time>
          {out && <StatusMark status={m.status} />}
        </span>
      </div>
      {out && m.status === 'failed' && (
        <div className="retry">
          <button
            type="button"
            className="button small"
            onClick={() => void retry()}
            disabled={retrying}
            aria-label={`Retry sending “${preview(m.text || attachment?.name || '')}”`}
          >
            {retrying ? 'Retrying…' : 'Retry'}
          </button>
          {error && (
            <span role="alert" className="error">
              {error}
            </span>
          )}
        </div>
      )}
    </li>
  );
}
