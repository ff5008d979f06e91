// Formatting shared by the views.

import type { Address, Contact, Timestamp } from '../api/types';

/** A contact's name, or its address when it has none. */
export function displayName(address: Address, contacts: readonly Contact[]): string {
  const contact = contacts.find((c) => c.address === address);
  return contact?.name?.trim() || address;
}

/** `14:05` today, `Mon 14:05` this week, else a short date and time. */
export function formatTime(ts: Timestamp, now: Date = new Date()): string {
  const d = new Date(ts);
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (sameDay(d, now)) return time;
  const ageDays = (now.getTime() - d.getTime()) / 86_400_000;
  if (ageDays >= 0 && ageDays < 6) {
    return `${d.toLocaleDateString(undefined, { weekday: 'short' })} ${time}`;
  }
  return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' })} ${time}`;
}

/** A heading for the day a message belongs to. */
export function formatDay(ts: Timestamp, now: Date = new Date()): string {
  const d = new Date(ts);
  if (sameDay(d, now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, yesterday)) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
}

export function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** Full date and time, for `title` and `<time dateTime>`. */
export function isoTime(ts: Timestamp): string {
  return new Date(ts).toISOString();
}
