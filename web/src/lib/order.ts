// A conversation's order (decision 0061): the node gives every message a `position`
// that both ends compute alike, and each author's count `n`. The list is kept sorted
// by position wherever a message comes from — a page, an event, our own send — and a
// gap in an author's counts is a message still on its way.

import type { HistoryEntry, MessageId } from '../api/types';

/** Where a message whose position is not known yet goes: last. */
export const UNKNOWN_POSITION = Number.MAX_SAFE_INTEGER;

/** Sorts by position; equal positions keep the order they came in (a stable sort). */
export function sortByPosition(messages: readonly HistoryEntry[]): HistoryEntry[] {
  const sorted = [...messages];
  sorted.sort((a, b) => a.position - b.position);
  return sorted;
}

/** `messages` (sorted) with `entry` put in its place: after every message at or
 * before its position, so that a page's order is kept for ties. */
export function placeIn(messages: readonly HistoryEntry[], entry: HistoryEntry): HistoryEntry[] {
  let at = messages.length;
  while (at > 0 && (messages[at - 1]?.position ?? 0) > entry.position) at -= 1;
  return [...messages.slice(0, at), entry, ...messages.slice(at)];
}

/** The incoming messages, among `candidates`, whose author wrote something between
 * them and the incoming message before them that has not arrived (their counts jump).
 * The first loaded message of the peer has nothing before it to compare with. */
export function waitingBefore(messages: readonly HistoryEntry[], candidates: ReadonlySet<MessageId>): Set<MessageId> {
  const waiting = new Set<MessageId>();
  if (candidates.size === 0) return waiting;
  let previous: number | undefined;
  for (const m of messages) {
    if (m.direction !== 'in' || m.n === undefined) continue;
    if (previous !== undefined && m.n > previous + 1 && candidates.has(m.id)) waiting.add(m.id);
    previous = previous === undefined ? m.n : Math.max(previous, m.n);
  }
  return waiting;
}
