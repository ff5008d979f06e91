// The message box: Enter sends, Shift+Enter starts a new line. A file attached by
// the paperclip (or dropped on the conversation, through `attach`) is sent with the
// text as its caption, with a progress bar while it uploads. On failure the text and
// the file both stay, with the reason above them.

import { useEffect, useId, useImperativeHandle, useRef, useState, type FormEvent, type KeyboardEvent, type Ref } from 'react';
import { ApiError, errorMessage, UPLOAD_CANCELLED, type UploadOptions } from '../api/client';
import { formatSize } from '../lib/format';
import { CloseIcon, FileIcon, PaperclipIcon, SendIcon } from './icons';
import { ProgressBar } from './ProgressBar';

interface Props {
  /** The accessible name of the text box, e.g. "Message to Bob". */
  label: string;
  /** Rejects with the error to show; the text is kept so nothing is lost. */
  onSend: (text: string) => Promise<void>;
  /** Uploads a file with its caption (may be empty); rejects like `onSend`. */
  onSendFile: (file: File, caption: string, options: Omit<UploadOptions, 'text'>) => Promise<void>;
  /** The text changed (typed, or emptied once sent); drives the typing indicator. */
  onTextChange?: (text: string) => void;
  ref?: Ref<ComposerHandle>;
}

export interface ComposerHandle {
  focus: () => void;
  /** Attaches a file (a drop on the conversation); ignored while one is uploading. */
  attach: (file: File) => void;
}

interface Upload {
  sent: number;
  total: number;
}

/** The reason an upload failed, in the user's terms. */
export function uploadErrorText(error: unknown, file: File): string {
  if (error instanceof ApiError && error.code === 'file_too_large') {
    // The node says "the file is N bytes; the limit is M bytes".
    const limit = /limit is (\d+) bytes/.exec(error.message)?.[1];
    const max = limit ? `; your node sends files up to ${formatSize(Number(limit))}` : '';
    return `“${file.name}” (${formatSize(file.size)}) is too large to send${max}.`;
  }
  return errorMessage(error);
}

export function Composer({ label, onSend, onSendFile, onTextChange, ref }: Props) {
  const hintId = useId();
  const box = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const cancel = useRef<AbortController | null>(null);
  const [text, setText] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [upload, setUpload] = useState<Upload | null>(null);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useImperativeHandle(
    ref,
    () => ({
      focus: () => box.current?.focus(),
      attach: (f: File) => {
        if (sending) return;
        setFile(f);
        setError(null);
        box.current?.focus();
      },
    }),
    [sending],
  );

  const textChanged = useRef(onTextChange);
  useEffect(() => {
    textChanged.current = onTextChange;
  });
  useEffect(() => {
    textChanged.current?.(text);
  }, [text]);

  // Grow with the text, up to the CSS max-height.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${el.scrollHeight}px`;
  }, [text]);

  // Leaving the conversation mid-upload cancels it.
  useEffect(() => () => cancel.current?.abort(), []);

  const sendFile = async (f: File, caption: string, raw: string) => {
    const controller = new AbortController();
    cancel.current = controller;
    setUpload({ sent: 0, total: f.size });
    try {
      await onSendFile(f, caption, {
        onProgress: (sent, total) => setUpload({ sent, total }),
        signal: controller.signal,
      });
      // Text typed while the file uploaded is not the caption: keep it.
      setText((t) => (t === raw ? '' : t));
      setFile(null);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === UPLOAD_CANCELLED)) setError(uploadErrorText(e, f));
    } finally {
      cancel.current = null;
      setUpload(null);
    }
  };

  const send = async () => {
    const message = text.trim();
    if ((!message && !file) || sending) return;
    setSending(true);
    setError(null);
    try {
      if (file) {
        await sendFile(file, message, text);
      } else {
        await onSend(message);
        setText((t) => (t === text ? '' : t));
      }
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
    const picked = picker.current?.files?.[0];
    if (picked) {
      setFile(picked);
      setError(null);
    }
    // Picking the same file again later must fire `change` again.
    if (picker.current) picker.current.value = '';
    box.current?.focus();
  };

  const removeFile = () => {
    setFile(null);
    setError(null);
    box.current?.focus();
  };

  return (
    <form className="composer" onSubmit={onSubmit} aria-label="Write a message">
      {error && (
        <p role="alert" className="error composer-error">
          {error}
        </p>
      )}
      {file && (
        <div className="attached" role="group" aria-label="Attached file">
          <span className="attachment-icon">
            <FileIcon />
          </span>
          <div className="attachment-main">
            <span className="attachment-name" title={file.name}>
              {file.name}
            </span>
            <span className="attachment-info">
              {formatSize(file.size)}
              {upload &&
                (upload.sent < upload.total ? ' · Uploading…' : ' · Preparing to send…')}
            </span>
            {upload && <ProgressBar label={`Uploading ${file.name}`} done={upload.sent} total={upload.total} />}
          </div>
          {upload ? (
            <button
              type="button"
              className="button small"
              onClick={() => cancel.current?.abort()}
              aria-label={`Cancel uploading ${file.name}`}
            >
              Cancel
            </button>
          ) : (
            <button type="button" className="icon-button" onClick={removeFile} aria-label={`Remove ${file.name}`}>
              <CloseIcon />
            </button>
          )}
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
        <input ref={picker} type="file" hidden tabIndex={-1} onChange={onPicked} data-testid="file-picker" />
        <textarea
          ref={box}
          className="composer-input"
          rows={1}
          value={text}
          aria-label={label}
          aria-describedby={hintId}
          placeholder={file ? 'Add a caption (optional)' : 'Write a message'}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" className="icon-button send" disabled={sending || (!text.trim() && !file)} aria-label="Send">
          <SendIcon />
        </button>
      </div>
      <p id={hintId} className="hint composer-hint">
        Enter to send, Shift+Enter for a new line{file ? '; the text is sent as the file’s caption' : ''}
      </p>
    </form>
  );
}
