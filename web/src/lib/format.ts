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

/** A byte count for people: `812 B`, `200 KiB`, `3.4 MiB`, `1 GiB`. */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${Math.max(0, Math.round(bytes || 0))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // Three significant digits at most: 1.5 MiB, 15.2 MiB, 152 MiB.
  const text = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${text.includes('.') ? text.replace(/\.?0+$/, '') : text} ${units[unit]}`;
}

/** Whole percent of `done` out of `total`, 0..=100. */
export function percent(done: number, total: number): number {
  if (total <= 0) return done > 0 ? 100 : 0;
  return Math.min(100, Math.max(0, Math.floor((done / total) * 100)));
}
