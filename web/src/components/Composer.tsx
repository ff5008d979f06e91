// The message box: Enter sends, Shift+Enter starts a new line. Files attached by
// the paperclip, pasted (an image copied to the clipboard), or dropped on the
// conversation (through `attach`) are handed to the app's upload queue on sending,
// with the text as the caption of the first one; the box is then free again at
// once, and the uploads show in the conversation (`PendingUploads`).
//
// Near the node's limit on a text (64 KiB of UTF-8) a counter shows the bytes
// left; over it, the text can be sent as a file instead (issue 23 item 4). With a
// `draftKey`, what is typed is kept in this browser until sent (item 5).

import {
  useEffect,
  useId,
  useImperativeHandle,
  useRef,
  useState,
  type ClipboardEvent,
  type FormEvent,
  type KeyboardEvent,
  type Ref,
} from 'react';
import { errorMessage } from '../api/client';
import { formatSize } from '../lib/format';
import { CloseIcon, FileIcon, PaperclipIcon, SendIcon } from './icons';

interface Props {
  /** The accessible name of the text box, e.g. "Message to Bob". */
  label: string;
  /** Rejects with the error to show; the text is kept so nothing is lost. */
  onSend: (text: string) => Promise<void>;
  /** Queues `files` for upload; `caption` (may be empty) goes with the first. */
  onSendFiles: (files: File[], caption: string) => void;
  /** The text changed (typed, or emptied once sent); drives the typing indicator. */
  onTextChange?: (text: string) => void;
  /** Where the unsent text is kept (localStorage), e.g. per node and conversation. */
  draftKey?: string;
  ref?: Ref<ComposerHandle>;
}

/** The node's limit on a text message, in UTF-8 bytes (`payload::MAX_TEXT_LEN`). */
export const MAX_TEXT_BYTES = 64 * 1024;
/** The counter shows from this many bytes on. */
export const COUNT_FROM = MAX_TEXT_BYTES - 4 * 1024;

const encoder = new TextEncoder();

/** The bytes `text` takes on the wire (UTF-8), as the node counts them. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

function readDraft(key: string | undefined): string {
  if (!key) return '';
  try {
    return localStorage.getItem(key) ?? '';
  } catch {
    return ''; // Storage turned off: no drafts, nothing else changes.
  }
}

function writeDraft(key: string | undefined, text: string) {
  if (!key) return;
  try {
    if (text) localStorage.setItem(key, text);
    else localStorage.removeItem(key);
  } catch {
    // Full or turned off: the draft lives as long as the page.
  }
}

export interface ComposerHandle {
  focus: () => void;
  /** Attaches files (a drop on the conversation), after any already attached. */
  attach: (files: File[]) => void;
}

export function Composer({ label, onSend, onSendFiles, onTextChange, draftKey, ref }: Props) {
  const hintId = useId();
  const countId = useId();
  const box = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const [text, setText] = useState(() => readDraft(draftKey));
  // Each with an id: the same file may be attached twice.
  const [files, setFiles] = useState<{ id: number; file: File }[]>([]);
  const nextId = useRef(0);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const attach = (more: File[]) => {
    if (more.length === 0) return;
    setFiles((f) => [...f, ...more.map((file) => ({ id: nextId.current++, file }))]);
    setError(null);
  };

  useImperativeHandle(ref, () => ({
    focus: () => box.current?.focus(),
    attach: (more: File[]) => {
      attach(more);
      box.current?.focus();
    },
  }));

  const textChanged = useRef(onTextChange);
  useEffect(() => {
    textChanged.current = onTextChange;
  });
  useEffect(() => {
    textChanged.current?.(text);
  }, [text]);
  useEffect(() => writeDraft(draftKey, text), [draftKey, text]);

  const bytes = utf8Length(text.trim());
  const over = bytes > MAX_TEXT_BYTES && files.length === 0;

  // Grow with the text, up to the CSS max-height.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${el.scrollHeight}px`;
  }, [text]);

  const send = async () => {
    const message = text.trim();
    if ((!message && files.length === 0) || sending || over) return;
    setError(null);
    if (files.length > 0) {
      // Queued, not sent yet: the conversation shows how each one goes.
      onSendFiles(files.map((f) => f.file), message);
      setFiles([]);
      setText('');
      box.current?.focus();
      return;
    }
    setSending(true);
    try {
      await onSend(message);
      setText((t) => (t === text ? '' : t));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setSending(false);
      box.current?.focus();
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    // Shift+Enter keeps the default (a newline); so does Enter while an IME composes.
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void send();
  };

  const onPicked = () => {
    attach(Array.from(picker.current?.files ?? []));
    // Picking the same file again later must fire `change` again.
    if (picker.current) picker.current.value = '';
    box.current?.focus();
  };

  /** Over the limit: the text goes as `message.txt`, through the upload queue. */
  const sendAsFile = () => {
    onSendFiles([new File([text], 'message.txt', { type: 'text/plain' })], '');
    setText('');
    box.current?.focus();
  };

  /** An image (or any file) pasted is attached; pasted text goes in as usual. */
  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    const pasted = Array.from(e.clipboardData?.files ?? []);
    if (pasted.length === 0) return;
    e.preventDefault();
    attach(pasted);
  };

  const removeFile = (id: number) => {
    setFiles((f) => f.filter((a) => a.id !== id));
    box.current?.focus();
  };

  return (
    <form className="composer" onSubmit={onSubmit} aria-label="Write a message">
      {error && (
        <p role="alert" className="error composer-error">
          {error}
        </p>
      )}
      {files.length > 0 && (
        <div role="group" aria-label={files.length === 1 ? 'Attached file' : `${files.length} attached files`}>
          <ul className="attached-files">
            {files.map(({ id, file: f }) => (
              <li key={id} className="attached">
                <span className="attachment-icon">
                  <FileIcon />
                </span>
                <div className="attachment-main">
                  <span className="attachment-name" title={f.name}>
                    {f.name}
                  </span>
                  <span className="attachment-info">{formatSize(f.size)}</span>
                </div>
                <button type="button" className="icon-button" onClick={() => removeFile(id)} aria-label={`Remove ${f.name}`}>
                  <CloseIcon />
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
      <div className="composer-row">
        <button
          type="button"
          className="icon-button attach"
          aria-label="Attach a file"
          title="Attach a file"
          disabled={sending}
          onClick={() => picker.current?.click()}
        >
          <PaperclipIcon />
        </button>
        <input ref={picker} type="file" multiple hidden tabIndex={-1} onChange={onPicked} data-testid="file-picker" />
        <textarea
          ref={box}
          className="composer-input"
          rows={1}
          value={text}
          dir="auto"
          aria-label={label}
          aria-describedby={bytes >= COUNT_FROM ? `${countId} ${hintId}` : hintId}
          aria-invalid={over || undefined}
          placeholder={files.length > 0 ? 'Add a caption (optional)' : 'Write a message'}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
        />
        <button
          type="submit"
          className="icon-button send"
          disabled={sending || over || (!text.trim() && files.length === 0)}
          aria-label="Send"
        >
          <SendIcon />
        </button>
      </div>
      {bytes >= COUNT_FROM && files.length === 0 && (
        <p id={countId} className={`hint composer-count${over ? ' over' : ''}`}>
          {over
            ? `${(bytes - MAX_TEXT_BYTES).toLocaleString()} bytes over the limit of 64 KiB for a message.`
            : `${(MAX_TEXT_BYTES - bytes).toLocaleString()} bytes left of 64 KiB.`}
        </p>
      )}
      {over && (
        <p role="alert" className="composer-over">
          Too long for a message.{' '}
          <button type="button" className="button small" onClick={sendAsFile}>
            Send as a file
          </button>
        </p>
      )}
      <p id={hintId} className="hint composer-hint">
        Enter to send, Shift+Enter for a new line
        {files.length === 1 && '; the text is sent as the file’s caption'}
        {files.length > 1 && '; the text is sent as the first file’s caption'}
      </p>
    </form>
  );
}
