// The open conversation: who it is with, the history, its files still uploading,
// and the composer. Files dropped anywhere on it are attached to the composer.

import { useEffect, useRef, useState, type DragEvent } from 'react';
import type { Address, Contact, FileId, MessageId } from '../api/types';
import type { Messaging } from '../hooks/useMessaging';
import { useTyping } from '../hooks/useTyping';
import type { Transfers } from '../hooks/useTransfers';
import type { Upload } from '../hooks/useUploads';
import { Composer, type ComposerHandle } from './Composer';
import { BackIcon, PlusIcon, ShieldIcon } from './icons';
import { MessageList } from './MessageList';
import { PresenceDot, type Presence } from './PresenceDot';

interface Props {
  peer: Address;
  contact: Contact | undefined;
  messaging: Messaging;
  onRetry: (id: MessageId) => Promise<void>;
  onBack: () => void;
  onVerify: () => void;
  onAddContact: () => void;
  /** Blocks this address (issue 15); left out, no Block button. */
  onBlock?: () => void;
  /** Renames the contact (issue 23); left out, or not a contact, no Rename button. */
  onRename?: () => void;
  /** Removes the contact, keeping the conversation; left out, no Remove button. */
  onRemove?: () => void;
  /** The contact's presence (issue 6). */
  presence?: Presence;
  /** The contact is typing to us now. */
  typing?: boolean;
  /** Live file transfers by file id. */
  transfers: Transfers;
  onFetchFile: (id: FileId) => Promise<void>;
  /** This conversation's files on their way to the node (`useUploads`). */
  uploads: readonly Upload[];
  /** Queues files for this conversation; the caption goes with the first. */
  onSendFiles: (files: File[], caption: string) => void;
  onCancelUpload: (id: number) => void;
  onRetryUpload: (id: number) => void;
  /** Where the composer keeps unsent text (issue 23 item 5). */
  draftKey?: string;
}

/** The drag carries files (not text or a link dragged from the page). */
function carriesFiles(e: DragEvent): boolean {
  return Array.from(e.dataTransfer?.types ?? []).includes('Files');
}

export function Conversation({
  peer,
  contact,
  messaging,
  onRetry,
  onBack,
  onVerify,
  onAddContact,
  onBlock,
  onRename,
  onRemove,
  presence = 'unknown',
  typing = false,
  transfers,
  onFetchFile,
  uploads,
  onSendFiles,
  onCancelUpload,
  onRetryUpload,
  draftKey,
}: Props) {
  const composer = useRef<ComposerHandle>(null);
  const typingIndicator = useTyping(peer);
  const name = contact?.name || peer;
  // dragenter/dragleave fire for every child crossed: count them to know when the
  // drag has left the conversation.
  const drags = useRef(0);
  const [dragging, setDragging] = useState(false);

  const onDragEnter = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    drags.current += 1;
    setDragging(true);
  };
  const onDragOver = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    // Without this the browser opens the file instead of dropping it here.
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  };
  const onDragLeave = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    drags.current = Math.max(0, drags.current - 1);
    if (drags.current === 0) setDragging(false);
  };
  const onDrop = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    drags.current = 0;
    setDragging(false);
    composer.current?.attach(Array.from(e.dataTransfer.files));
  };

  // A file dropped beside the conversation (the contact list, a margin) would make
  // the browser leave the app to show it: refuse such drops instead.
  useEffect(() => {
    const refuse = (e: globalThis.DragEvent) => {
      if (e.defaultPrevented || !e.dataTransfer || !Array.from(e.dataTransfer.types).includes('Files')) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'none';
    };
    window.addEventListener('dragover', refuse);
    window.addEventListener('drop', refuse);
    return () => {
      window.removeEventListener('dragover', refuse);
      window.removeEventListener('drop', refuse);
    };
  }, []);

  // Opening a conversation puts the cursor where one types.
  useEffect(() => {
    composer.current?.focus();
  }, [peer]);

  return (
    <section
      className={`conversation${dragging ? ' dragging' : ''}`}
      aria-labelledby="conversation-title"
      onDragEnter={onDragEnter}
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
    >
      {dragging && (
        <div className="drop-zone" aria-hidden="true">
          Drop files to send them to {name}
        </div>
      )}
      <header className="pane-header">
        <button type="button" className="icon-button back" onClick={onBack} aria-label="Back to contacts">
          <BackIcon />
        </button>
        <PresenceDot status={presence} />
        <div className="pane-title">
          <h2 id="conversation-title" dir="auto">
            {name}
          </h2>
          {contact?.name && (
            <p className="address small" translate="no">
              {peer}
            </p>
          )}
        </div>
        {contact ? (
          contact.verified ? (
            <button type="button" className="badge verified" onClick={onVerify} title="Safety number verified">
              <ShieldIcon /> Verified
            </button>
          ) : (
            <button type="button" className="button small" onClick={onVerify}>
              <ShieldIcon /> Verify
            </button>
          )
        ) : (
          <button type="button" className="button small" onClick={onAddContact}>
            <PlusIcon /> Add contact
          </button>
        )}
        {contact && onRename && (
          <button type="button" className="button small" onClick={onRename} aria-label={`Rename ${name}`}>
            Rename
          </button>
        )}
        {contact && onRemove && (
          <button type="button" className="button small" onClick={onRemove} aria-label={`Remove ${name} from contacts`}>
            Remove
          </button>
        )}
        {onBlock && (
          <button type="button" className="button small danger" onClick={onBlock} aria-label={`Block ${name}`}>
            Block
          </button>
        )}
      </header>
      {messaging.error && (
        <p role="alert" className="error banner">
          {messaging.error}
        </p>
      )}
      <MessageList
        peerName={name}
        messages={messaging.messages}
        fresh={messaging.fresh}
        loading={messaging.loading}
        loadingOlder={messaging.loadingOlder}
        hasMore={messaging.hasMore}
        onLoadOlder={() => void messaging.loadOlder()}
        onRetry={onRetry}
        transfers={transfers}
        onFetchFile={onFetchFile}
        uploads={uploads}
        onCancelUpload={onCancelUpload}
        onRetryUpload={onRetryUpload}
      />
      <p className="typing" aria-live="polite">
        {typing ? `${name} is typing…` : ''}
      </p>
      <Composer
        ref={composer}
        label={`Message to ${name}`}
        onSend={messaging.send}
        onSendFiles={onSendFiles}
        onTextChange={typingIndicator.update}
        draftKey={draftKey}
      />
    </section>
  );
}
