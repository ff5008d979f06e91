// The conversations in the sidebar, the most recent first (then the others, contacts
// before senders who are not contacts yet). The order holds still while keyboard
// focus is in the list: moving the focused button would drop focus (and a screen
// reader's place); it catches up when focus leaves.

import { useRef, useState } from 'react';
import type { Address, Contact } from '../api/types';
import type { LastMessage } from '../hooks/useUnread';
import { formatTime, isoTime } from '../lib/format';
import { PresenceDot, type Presence } from './PresenceDot';
import { ShieldIcon } from './icons';

interface Entry {
  address: Address;
  name: string | null;
  verified: boolean;
  contact: boolean;
}

interface Props {
  contacts: Contact[];
  unread: Record<Address, number>;
  active: Address | null;
  onOpen: (address: Address) => void;
  /** Presence per address, once the node reports it. */
  presence?: Record<Address, Presence>;
  /** Uploads per address still on their way, and those that failed. */
  uploads?: Record<Address, UploadCounts>;
  /** Unix ms of each conversation's newest message. */
  recent?: Record<Address, number>;
  /** The start of each conversation's newest message (issue 23 item 8). */
  last?: Record<Address, LastMessage>;
  /** Who is typing to us now. */
  typing?: ReadonlySet<Address>;
}

const NOBODY: ReadonlySet<Address> = new Set();

/** Files being sent to one person, as the contact list shows them. */
export interface UploadCounts {
  sending: number;
  failed: number;
}

/** One line on files being sent, or null when there are none. */
export function uploadsText(counts: UploadCounts | undefined): string | null {
  if (!counts) return null;
  const files = (n: number) => `${n} ${n === 1 ? 'file' : 'files'}`;
  if (counts.failed > 0) return `${files(counts.failed)} not sent`;
  if (counts.sending > 0) return `Sending ${files(counts.sending)}…`;
  return null;
}

export function contactButtonId(address: Address): string {
  return `contact-${address}`;
}

/** Entries by their newest message, newest first; those without any keep their
 * place after them (the sort is stable). */
export function byRecent(entries: Entry[], recent: Record<Address, number>): Entry[] {
  return [...entries].sort((a, b) => (recent[b.address] ?? 0) - (recent[a.address] ?? 0));
}

/** `next` in the order of `shown` where both have it, newcomers after. */
function holding(shown: Address[], next: Entry[]): Entry[] {
  const place = new Map(shown.map((a, i) => [a, i]));
  return [...next].sort((a, b) => (place.get(a.address) ?? Infinity) - (place.get(b.address) ?? Infinity));
}

export function ContactList({
  contacts,
  unread,
  active,
  onOpen,
  presence = {},
  uploads = {},
  recent = {},
  last = {},
  typing = NOBODY,
}: Props) {
  const known = new Set(contacts.map((c) => c.address));
  const wanted = byRecent(
    [
      ...contacts.map((c) => ({ address: c.address, name: c.name?.trim() || null, verified: c.verified, contact: true })),
      ...[...new Set([...Object.keys(unread), ...Object.keys(recent)])]
        .filter((a) => !known.has(a))
        .map((address) => ({ address, name: null, verified: false, contact: false })),
    ],
    recent,
  );
  const list = useRef<HTMLUListElement>(null);
  const shown = useRef<Address[]>([]);
  // Bumped when focus leaves the list, so the held order catches up.
  const [, setFocusLeft] = useState(0);
  const focused = list.current?.contains(document.activeElement) ?? false;
  const entries = focused ? holding(shown.current, wanted) : wanted;
  shown.current = entries.map((e) => e.address);

  if (entries.length === 0) {
    return <p className="muted empty-list">No contacts yet. Add someone by their four words.</p>;
  }

  return (
    <ul
      className="contacts"
      ref={list}
      onBlur={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setFocusLeft((n) => n + 1);
      }}
    >
      {entries.map((e) => {
        const count = unread[e.address] ?? 0;
        const sending = uploadsText(uploads[e.address]);
        return (
          <li key={e.address}>
            <button
              type="button"
              id={contactButtonId(e.address)}
              className="contact"
              aria-current={e.address === active ? 'true' : undefined}
              onClick={() => onOpen(e.address)}
            >
              <span className="avatar" aria-hidden="true">
                {(e.name ?? e.address).charAt(0).toUpperCase()}
              </span>
              <span className="contact-text">
                <span className="contact-name">
                  {e.name ?? e.address}
                  {e.verified && (
                    <span className="verified-mark" role="img" aria-label="verified">
                      <ShieldIcon />
                    </span>
                  )}
                </span>
                {typing.has(e.address) ? (
                  <span className="contact-last typing-now">typing…</span>
                ) : last[e.address] ? (
                  <span className="contact-last" dir="auto">
                    {last[e.address]?.out && <span className="muted">You: </span>}
                    {last[e.address]?.text}
                  </span>
                ) : (
                  e.name && (
                    <span className="contact-address" translate="no">
                      {e.address}
                    </span>
                  )
                )}
                {!e.contact && <span className="contact-address">Not in your contacts</span>}
                {sending && (
                  <span className={uploads[e.address]?.failed ? 'contact-address error' : 'contact-address'}>
                    {sending}
                  </span>
                )}
              </span>
              {/* After the name, so the button's accessible name starts with it. */}
              <PresenceDot status={presence[e.address] ?? 'unknown'} />
              {recent[e.address] ? (
                <time className="contact-time" dateTime={isoTime(recent[e.address] ?? 0)}>
                  {formatTime(recent[e.address] ?? 0)}
                </time>
              ) : null}
              {count > 0 && (
                <span className="unread">
                  <span aria-hidden="true">{count > 99 ? '99+' : count}</span>
                  <span className="sr-only">
                    {count} unread {count === 1 ? 'message' : 'messages'}
                  </span>
                </span>
              )}
            </button>
          </li>
        );
      })}
    </ul>
  );
}
