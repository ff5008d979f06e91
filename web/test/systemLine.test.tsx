// Issue 14 item 6: when a contact's device lost the session, the conversation says so
// in a line of its own, not as a message from the contact.

import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { parseEvent } from '../src/hooks/useEvents';
import { BOB, historyEntry, messageList } from './helpers';

describe('system lines', () => {
  it('shows a reset as a note between the messages, not as a bubble from the contact', () => {
    const messages = [historyEntry(1), historyEntry(2, { text: '', system: 'session_reset', status: 'read' }), historyEntry(3)];
    render(messageList(messages));
    const note = screen.getByRole('note');
    expect(note).toHaveTextContent("Bob's device had lost your secure session");
    expect(note).not.toHaveClass('message');
    const items = Array.from(document.querySelectorAll('ol.message-list > li'));
    expect(items.map((li) => li.className.split(' ')[0])).toEqual(['day', 'message', 'system-line', 'message']);
    // Nothing of it reads as Bob's message.
    expect(within(note).queryByText(/^Bob:/)).not.toBeInTheDocument();
  });

  it('parses the live event, and refuses one it does not know', () => {
    const event = { type: 'system_line', id: 'a'.repeat(32), peer: BOB, line: 'session_reset', timestamp: 5, position: 9 };
    expect(parseEvent(JSON.stringify(event))).toEqual(event);
    expect(parseEvent(JSON.stringify({ ...event, line: 'something_else' }))).toBeNull();
  });
});
