import { act, renderHook } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { useUnread } from '../src/hooks/useUnread';
import { BOB, CAROL } from './helpers';

const from = (sender: string, n: number) => ({
  type: 'message_received' as const,
  id: n.toString(16).padStart(32, '0'),
  from: sender,
  text: 'hi',
  timestamp: n,
});

describe('useUnread', () => {
  it('counts incoming messages for conversations that are not open', () => {
    const { result, rerender } = renderHook(({ open }) => useUnread(open), {
      initialProps: { open: BOB as string | null },
    });

    act(() => {
      result.current.handleEvent(from(CAROL, 1));
      result.current.handleEvent(from(CAROL, 2));
      result.current.handleEvent(from(BOB, 3)); // Bob's conversation is open
      result.current.handleEvent({ type: 'status_changed', id: 'x', to: CAROL, status: 'read' });
    });
    expect(result.current.counts).toEqual({ [CAROL]: 2 });
    expect(result.current.total).toBe(2);

    // Opening Carol's conversation reads it; Bob's now counts.
    rerender({ open: CAROL });
    act(() => result.current.handleEvent(from(BOB, 4)));
    expect(result.current.counts).toEqual({ [CAROL]: 0, [BOB]: 1 });
    expect(result.current.total).toBe(1);
  });
});
