// The messenger: wires the hooks to the views and the live event stream.

import { useCallback, useEffect, useRef, useState } from 'react';
import { SessionProvider, useSession } from './api/session';
import type { Address, MessageId, ServerEvent } from './api/types';
import { AddContactDialog } from './components/AddContactDialog';
import { contactButtonId, type UploadCounts } from './components/ContactList';
import { Conversation } from './components/Conversation';
import { CopyButton } from './components/CopyButton';
import { DeadLetters } from './components/DeadLetters';
import { Dialog } from './components/Dialog';
import { FirstRun } from './components/FirstRun';
import { CheckingIdentity, IdentityUnavailable } from './components/IdentityCheck';
import { NameDialog } from './components/NameDialog';
import { NotSignedIn } from './components/NotSignedIn';
import { QrCode } from './components/QrCode';
import { SafetyNumber } from './components/SafetyNumber';
import { Sidebar } from './components/Sidebar';
import { Unlock } from './components/Unlock';
import { Welcome } from './components/Welcome';
import { useContacts } from './hooks/useContacts';
import { useDeadLetters } from './hooks/useDeadLetters';
import { useEvents } from './hooks/useEvents';
import { useMarkRead } from './hooks/useMarkRead';
import { useMessaging } from './hooks/useMessaging';
import { useNotifications } from './hooks/useNotifications';
import { useRequests } from './hooks/useRequests';
import { usePresence } from './hooks/usePresence';
import { useStatus } from './hooks/useStatus';
import { useTransfers } from './hooks/useTransfers';
import { useSettings } from './hooks/useSettings';
import { useUnread } from './hooks/useUnread';
import { useUploads, type Upload } from './hooks/useUploads';
import { useWindowActive } from './hooks/useWindowActive';
import { displayName } from './lib/format';

type View = { kind: 'home' } | { kind: 'chat'; peer: Address } | { kind: 'dead' };
type Modal =
  | { kind: 'add'; address?: Address }
  | { kind: 'qr' }
  | { kind: 'verify'; address: Address }
  | { kind: 'rename'; address: Address }
  | null;

export function App({ fetch }: { fetch?: typeof globalThis.fetch }) {
  return (
    <SessionProvider fetch={fetch}>
      <Gate />
    </SessionProvider>
  );
}

/** One screen per session state (decision 0013). */
function Gate() {
  const session = useSession();
  const { gate, check } = session;
  useEffect(check, [check]); // Once at start: `check` is stable.
  switch (gate.kind) {
    case 'checking':
      return <CheckingIdentity />;
    case 'unavailable':
      return <IdentityUnavailable message={gate.message} onRetry={check} />;
    case 'signed_out':
      return <NotSignedIn signedOut={gate.byUser} />;
    case 'new':
      return <FirstRun onCreate={session.create} />;
    case 'locked':
      return <Unlock onUnlock={session.unlock} onStale={check} />;
    case 'unlocked':
      // A fresh messenger per unlock: nothing of a locked session stays in memory.
      return <Messenger key={gate.generation} />;
  }
}

/** The conversation the address bar names (`#/c/<address>`), if any: a reload
 * returns to it (issue 23 item 5). */
export function conversationInUrl(hash: string = window.location.hash): Address | null {
  const found = /^#\/c\/([a-z]+(?:-[a-z]+){3})$/.exec(hash);
  return found?.[1] ?? null;
}

function viewInUrl(): View {
  const peer = conversationInUrl();
  return peer ? { kind: 'chat', peer } : { kind: 'home' };
}

/** Where unsent text for `peer` is kept: per node identity and conversation. */
export function draftKey(me: Address, peer: Address): string {
  return `communitas-draft:${me}:${peer}`;
}

function Messenger() {
  const session = useSession();
  const [view, setView] = useState<View>(viewInUrl);
  const myAddress = session.gate.kind === 'unlocked' ? (session.gate.identity.address ?? null) : null;
  const [modal, setModal] = useState<Modal>(null);
  const [announcement, setAnnouncement] = useState('');
  const peer = view.kind === 'chat' ? view.peer : null;

  const status = useStatus();
  const me = status.status?.address ?? null;
  const contacts = useContacts();
  const active = useWindowActive();
  const unread = useUnread(peer, active);
  const messaging = useMessaging(peer, me);
  useMarkRead({ peer, messages: messaging.messages, active, markStatus: messaging.markStatus });
  const settings = useSettings();
  const dead = useDeadLetters();
  const presence = usePresence();
  const transfers = useTransfers();
  const notifications = useNotifications();
  const uploads = useUploads(messaging.showSentFile);
  const requests = useRequests(contacts.refresh);

  const nameOf = (address: Address) => displayName(address, contacts.contacts);

  const connection = useEvents({
    onEvent: (event: ServerEvent) => {
      if (event.type === 'locked') {
        session.locked(); // The unlock screen replaces this messenger.
        return;
      }
      if (event.type === 'profile') session.renamed(event.name);
      messaging.handleEvent(event);
      contacts.handleEvent(event);
      unread.handleEvent(event);
      status.handleEvent(event);
      dead.handleEvent(event);
      presence.handleEvent(event);
      transfers.handleEvent(event);
      requests.handleEvent(event);
      if (event.type === 'request') setAnnouncement(`New message request from ${event.from}`);
      if (event.type === 'message_received') {
        const who = nameOf(event.from);
        // Only when the user is not looking: otherwise the page itself shows it.
        if (!active) {
          const from = event.from;
          notifications.notify(who, from, () => setView({ kind: 'chat', peer: from }));
        }
        const caption = event.text ? `: ${event.text}` : '';
        const said = event.attachment ? ` sent a file, ${event.attachment.name}${caption}` : `: ${event.text}`;
        setAnnouncement(event.from === peer ? `${who}${said}` : `New message from ${who}`);
      }
    },
    // Locked while the socket was down (no `locked` event came): the next request
    // answers 423, and the unlock screen replaces this one.
    onClose: () => void status.refresh(),
    onResync: () => {
      void status.refresh();
      void contacts.refresh();
      void messaging.refresh();
      void dead.refresh();
      void presence.refresh();
      void settings.refresh();
      void requests.refresh();
      void unread.load();
    },
  });

  useEffect(() => {
    document.title = unread.total > 0 ? `(${unread.total}) Communitas` : 'Communitas';
  }, [unread.total]);

  // The address bar names the open conversation; editing it opens another.
  useEffect(() => {
    const hash = view.kind === 'chat' ? `#/c/${view.peer}` : '';
    if (window.location.hash !== hash) {
      window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
    }
  }, [view]);
  useEffect(() => {
    const follow = () => {
      const peer = conversationInUrl();
      if (peer) setView((v) => (v.kind === 'chat' && v.peer === peer ? v : { kind: 'chat', peer }));
    };
    window.addEventListener('hashchange', follow);
    return () => {
      window.removeEventListener('hashchange', follow);
      // Locked or signed out: the next messenger starts fresh (a reload keeps it).
      if (conversationInUrl()) {
        window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}`);
      }
    };
  }, []);

  // Going back on a narrow screen returns focus to the conversation that was open.
  const returnFocusTo = useRef<string | null>(null);
  useEffect(() => {
    if (view.kind !== 'home' || !returnFocusTo.current) return;
    document.getElementById(returnFocusTo.current)?.focus();
    returnFocusTo.current = null;
  }, [view]);

  const open = useCallback((address: Address) => {
    setModal(null);
    setView({ kind: 'chat', peer: address });
  }, []);

  const back = () => {
    returnFocusTo.current = peer ? contactButtonId(peer) : null;
    setView({ kind: 'home' });
  };

  const { retry: retryMessage } = messaging;
  const { remove: removeDead } = dead;
  const retry = useCallback(
    async (id: MessageId) => {
      await retryMessage(id);
      removeDead(id);
      setAnnouncement('The message is queued again.');
    },
    [retryMessage, removeDead],
  );

  const imitations = requests.imitated.map(
    (a) => `Someone is imitating ${nameOf(a)}: a message from other keys claimed this address and was refused.`,
  );
  const errors = [status.error, contacts.error, requests.error, ...imitations].filter(
    (e): e is string => e !== null,
  );
  const blockPeer = async (address: Address) => {
    try {
      await requests.block(address);
      setAnnouncement(`${nameOf(address)} is blocked.`);
      setView({ kind: 'home' });
    } catch (e) {
      setAnnouncement(e instanceof Error ? e.message : 'Blocking failed.');
    }
  };
  const removePeer = async (address: Address) => {
    const who = nameOf(address);
    // Decision 0060: the contact goes, the conversation stays; asked first all the same.
    if (!window.confirm(`Remove ${who} from your contacts? The conversation is kept; if they write again, it is a message request.`)) return;
    try {
      await contacts.remove(address);
      setAnnouncement(`${who} is no longer a contact. The conversation is kept.`);
    } catch (e) {
      setAnnouncement(e instanceof Error ? e.message : 'Removing failed.');
    }
  };
  // The open conversation's newest message is the one this page has (sent from here).
  const newest = messaging.messages[messaging.messages.length - 1];
  const last =
    peer && newest
      ? { ...unread.last, [peer]: { text: newest.text || newest.attachment?.name || '', out: newest.direction === 'out' } }
      : unread.last;
  const contact = peer ? contacts.contacts.find((c) => c.address === peer) : undefined;
  const renaming = modal?.kind === 'rename' ? contacts.contacts.find((c) => c.address === modal.address) : undefined;
  const verifying = modal?.kind === 'verify' ? contacts.contacts.find((c) => c.address === modal.address) : undefined;

  return (
    <div className="app" data-pane={view.kind === 'home' ? 'list' : 'main'}>
      <a className="skip-link" href="#main">
        Skip to the main pane
      </a>
      <Sidebar
        status={status.status}
        connection={connection}
        contacts={contacts.contacts}
        contactsLoaded={contacts.loaded}
        unread={unread.counts}
        presence={presence.presence}
        uploads={uploadCounts(uploads.uploads)}
        recent={unread.recent}
        last={last}
        typing={presence.typing}
        own={{ status: presence.own, saving: presence.savingOwn, error: presence.ownError, onChange: (s) => void presence.setOwn(s) }}
        active={peer}
        deadCount={dead.letters.length}
        deadOpen={view.kind === 'dead'}
        errors={errors}
        settings={settings}
        notifications={notifications}
        requests={requests}
        nameOf={nameOf}
        onOpen={open}
        onAddContact={() => setModal({ kind: 'add' })}
        onShowQr={() => setModal({ kind: 'qr' })}
        onShowDead={() => setView({ kind: 'dead' })}
      />
      <main id="main" className="main" tabIndex={-1}>
        {view.kind === 'chat' && (
          <Conversation
            key={view.peer}
            peer={view.peer}
            contact={contact}
            messaging={messaging}
            onRetry={retry}
            onBack={back}
            onVerify={() => setModal({ kind: 'verify', address: view.peer })}
            onAddContact={() => setModal({ kind: 'add', address: view.peer })}
            onBlock={() => void blockPeer(view.peer)}
            onRename={() => setModal({ kind: 'rename', address: view.peer })}
            onRemove={() => void removePeer(view.peer)}
            draftKey={myAddress ? draftKey(myAddress, view.peer) : undefined}
            presence={presence.presence[view.peer]}
            typing={presence.typing.has(view.peer)}
            transfers={transfers.transfers}
            onFetchFile={transfers.fetchFile}
            uploads={uploads.uploads.filter((u) => u.peer === view.peer)}
            onSendFiles={(files, caption) => uploads.add(view.peer, files, caption)}
            onCancelUpload={uploads.cancel}
            onRetryUpload={uploads.retry}
          />
        )}
        {view.kind === 'dead' && (
          <DeadLetters
            letters={dead.letters}
            loaded={dead.loaded}
            error={dead.error}
            nameOf={nameOf}
            onRetry={retry}
            onOpen={open}
            onBack={back}
          />
        )}
        {view.kind === 'home' && <Welcome address={me} onAddContact={() => setModal({ kind: 'add' })} />}
      </main>
      <div className="sr-only" role="status" aria-live="polite" aria-atomic="true">
        {announcement}
      </div>

      {modal?.kind === 'add' && (
        <AddContactDialog
          initialAddress={modal.address}
          onAdd={contacts.add}
          onVerify={contacts.verify}
          onOpen={open}
          onClose={() => setModal(null)}
        />
      )}
      {modal?.kind === 'qr' && me && (
        <Dialog title="Your address" onClose={() => setModal(null)}>
          <div className="qr-dialog">
            <QrCode text={me} size={240} label={`QR code of your address, ${me}`} />
            <p className="address" translate="no">
              {me}
            </p>
            <CopyButton text={me} label="Copy address" />
          </div>
        </Dialog>
      )}
      {renaming && (
        <NameDialog
          title={`Rename ${renaming.name || renaming.address}`}
          label="Name"
          hint="What you call them; only you see it. Leave it empty to show their address."
          initial={renaming.name ?? ''}
          onSave={(name) => contacts.rename(renaming.address, name)}
          onClose={() => setModal(null)}
        />
      )}
      {verifying && (
        <Dialog title={`Verify ${verifying.name || verifying.address}`} onClose={() => setModal(null)}>
          <SafetyNumber contact={verifying} onVerify={() => contacts.verify(verifying.address)} />
        </Dialog>
      )}
    </div>
  );
}

/** Uploads still on their way and failed ones, per person. */
function uploadCounts(uploads: Upload[]): Record<Address, UploadCounts> {
  const counts: Record<Address, UploadCounts> = {};
  for (const u of uploads) {
    const c = (counts[u.peer] ??= { sending: 0, failed: 0 });
    if (u.state.kind === 'failed') c.failed += 1;
    else c.sending += 1;
  }
  return counts;
}
