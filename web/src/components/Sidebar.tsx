// The left column: who you are, the connection, actions, and the conversations.

import type { Address, Contact, NodeStatus, PresenceStatus } from '../api/types';
import type { ConnectionState } from '../hooks/useEvents';
import type { SettingsState } from '../hooks/useSettings';
import { AccountActions } from './AccountActions';
import type { NotificationsState } from '../hooks/useNotifications';
import { NotificationsToggle } from './NotificationsToggle';
import { ContactList, type UploadCounts } from './ContactList';
import { PlusIcon } from './icons';
import { MyAddress } from './MyAddress';
import { MyStatus } from './MyStatus';
import { ReadReceiptsToggle } from './ReadReceiptsToggle';
import { BlockedList } from './BlockedList';
import { Requests } from './Requests';
import type { RequestsState } from '../hooks/useRequests';
import type { Presence } from './PresenceDot';
import type { LastMessage } from '../hooks/useUnread';

interface Props {
  status: NodeStatus | null;
  connection: ConnectionState;
  contacts: Contact[];
  contactsLoaded: boolean;
  unread: Record<Address, number>;
  presence?: Record<Address, Presence>;
  /** Files being sent, per person (shown for conversations that are not open too). */
  uploads?: Record<Address, UploadCounts>;
  /** Unix ms of each conversation's newest message (the list's order). */
  recent?: Record<Address, number>;
  /** The start of each conversation's newest message. */
  last?: Record<Address, LastMessage>;
  /** Who is typing to us now. */
  typing?: ReadonlySet<Address>;
  /** Our own presence and how to change it; left out without it. */
  own?: { status: PresenceStatus | null; saving: boolean; error: string | null; onChange: (status: PresenceStatus) => void };
  active: Address | null;
  deadCount: number;
  deadOpen: boolean;
  errors: string[];
  /** The user's settings; the section is left out without them. */
  settings?: SettingsState;
  /** This browser's desktop notifications. */
  notifications?: NotificationsState;
  /** Message requests and the block list (issue 15); left out without them. */
  requests?: RequestsState;
  /** A contact's name, or its address. */
  nameOf?: (address: Address) => string;
  onOpen: (address: Address) => void;
  onAddContact: () => void;
  onShowQr: () => void;
  onShowDead: () => void;
}

const CONNECTION_TEXT: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
};

export function Sidebar(props: Props) {
  const { status, connection, deadCount } = props;
  const peers = status?.connected_peers;
  return (
    <aside className="sidebar" aria-label="Contacts and your address">
      <header className="brand">
        <h1>Communitas</h1>
        <p className={`connection connection-${connection}`}>
          <span className="connection-dot" aria-hidden="true" />
          {CONNECTION_TEXT[connection]}
          {connection === 'open' && peers !== undefined && ` · ${peers} ${peers === 1 ? 'peer' : 'peers'}`}
        </p>
      </header>
      <AccountActions
        uploading={Object.values(props.uploads ?? {}).reduce((n, c) => n + c.sending, 0)}
      />
      {props.errors.map((e) => (
        <p key={e} role="alert" className="error banner">
          {e}
        </p>
      ))}
      <MyAddress address={status?.address ?? null} onShowQr={props.onShowQr} />
      {props.own && <MyStatus {...props.own} />}
      <div className="sidebar-actions">
        <button type="button" className="button primary" onClick={props.onAddContact}>
          <PlusIcon /> Add contact
        </button>
        <button
          type="button"
          className="button"
          onClick={props.onShowDead}
          aria-current={props.deadOpen ? 'page' : undefined}
        >
          Dead letters
          {deadCount > 0 && (
            <span className="count">
              <span aria-hidden="true">{deadCount}</span>
              <span className="sr-only">({deadCount})</span>
            </span>
          )}
        </button>
      </div>
      {props.requests && (
        <Requests
          requests={props.requests.requests}
          onAccept={props.requests.accept}
          onDecline={props.requests.decline}
        />
      )}
      <nav className="conversations" aria-label="Conversations">
        {props.contactsLoaded ? (
          <ContactList
            contacts={props.contacts}
            unread={props.unread}
            presence={props.presence}
            uploads={props.uploads}
            recent={props.recent}
            last={props.last}
            typing={props.typing}
            active={props.active}
            onOpen={props.onOpen}
          />
        ) : (
          <p className="muted empty-list">Loading contacts…</p>
        )}
      </nav>
      {props.settings && (
        <section className="sidebar-settings" aria-label="Settings">
          <ReadReceiptsToggle {...props.settings} />
          {props.notifications && <NotificationsToggle {...props.notifications} />}
          {props.requests && (
            <BlockedList
              blocks={props.requests.blocks}
              nameOf={props.nameOf ?? ((a) => a)}
              onUnblock={props.requests.unblock}
            />
          )}
        </section>
      )}
    </aside>
  );
}
