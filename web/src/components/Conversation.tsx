// The open conversation: who it is with, the history, and the composer.

import { useEffect, useRef } from 'react';
import type { Address, Contact, MessageId } from '../api/types';
import type { Messaging } from '../hooks/useMessaging';
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
  /** The contact's presence (issue 6). */
  presence?: Presence;
  /** The contact is typing to us now. */
  typing?: boolean;
}

export function Conversation({
  peer,
  contact,
  messaging,
  onRetry,
  onBack,
  onVerify,
  onAddContact,
  presence = 'unknown',
  typing = false,
}: Props) {
  const composer = useRef<ComposerHandle>(null);
  const name = contact?.name || peer;

  // Opening a conversation puts the cursor where one types.
  useEffect(() => {
    composer.current?.focus();
  }, [peer]);

  return (
    <section className="conversation" aria-labelledby="conversation-title">
      <header className="pane-header">
        <button type="button" className="icon-button back" onClick={onBack} aria-label="Back to contacts">
          <BackIcon />
        </button>
        <PresenceDot status={presence} />
        <div className="pane-title">
          <h2 id="conversation-title">{name}</h2>
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
      </header>
      {messaging.error && (
        <p role="alert" className="error banner">
          {messaging.error}
        </p>
      )}
      <MessageList
        peerName={name}
        messages={messaging.messages}
        loading={messaging.loading}
        loadingOlder={messaging.loadingOlder}
        hasMore={messaging.hasMore}
        onLoadOlder={() => void messaging.loadOlder()}
        onRetry={onRetry}
      />
      <p className="typing" aria-live="polite">
        {typing ? `${name} is typing…` : ''}
      </p>
      <Composer ref={composer} label={`Message to ${name}`} onSend={messaging.send} />
    </section>
  );
}
