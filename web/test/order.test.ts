import { describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../src/api/types';
import { placeIn, sortByPosition, waitingBefore } from '../src/lib/order';

function entry(id: string, position: number, direction: 'in' | 'out' = 'in', n?: number): HistoryEntry {
  return {
    id,
    from: direction === 'in' ? 'peer' : 'me',
    to: direction === 'in' ? 'me' : 'peer',
    direction,
    text: id,
    timestamp: 0,
    status: 'delivered',
    position,
    ...(n === undefined ? {} : { n }),
  };
}

const ids = (list: HistoryEntry[]) => list.map((m) => m.id);

describe('conversation order', () => {
  it('sorts by position and keeps ties in arrival order', () => {
    const list = sortByPosition([entry('c', 30), entry('a', 10), entry('b1', 20), entry('b2', 20)]);
    expect(ids(list)).toEqual(['a', 'b1', 'b2', 'c']);
  });

  it('puts a late message in its place, not at the end', () => {
    const list = [entry('1', 10), entry('3', 30), entry('4', 40)];
    expect(ids(placeIn(list, entry('2', 20)))).toEqual(['1', '2', '3', '4']);
    expect(ids(placeIn(list, entry('5', 50)))).toEqual(['1', '3', '4', '5']);
    expect(ids(placeIn(list, entry('0', 1)))).toEqual(['0', '1', '3', '4']);
    expect(ids(placeIn(list, entry('3b', 30)))).toEqual(['1', '3', '3b', '4']);
  });

  it('marks a fresh message whose earlier ones have not arrived', () => {
    const list = [entry('a', 10, 'in', 1), entry('mine', 15, 'out', 1), entry('c', 30, 'in', 3), entry('d', 40, 'in', 4)];
    expect([...waitingBefore(list, new Set(['c', 'd']))]).toEqual(['c']);
    // Not fresh (history read after a reload): no note.
    expect(waitingBefore(list, new Set()).size).toBe(0);
    // Once 2 arrives, nothing waits.
    const filled = placeIn(list, entry('b', 20, 'in', 2));
    expect(waitingBefore(filled, new Set(['b', 'c', 'd'])).size).toBe(0);
    // Our own counts and messages without one never count.
    const mixed = [entry('x', 1, 'in'), entry('y', 2, 'out', 9), entry('z', 3, 'in', 5)];
    expect(waitingBefore(mixed, new Set(['x', 'y', 'z'])).size).toBe(0);
  });
});
