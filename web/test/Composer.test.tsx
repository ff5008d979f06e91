import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/api/client';
import { Composer } from '../src/components/Composer';

function setup(onSend = vi.fn().mockResolvedValue(undefined)) {
  render(<Composer label="Message to Bob" onSend={onSend} />);
  return { onSend, box: screen.getByRole('textbox', { name: 'Message to Bob' }), user: userEvent.setup() };
}

describe('Composer', () => {
  it('sends on Enter and clears the box', async () => {
    const { onSend, box, user } = setup();
    await user.type(box, 'hello bob{Enter}');
    expect(onSend).toHaveBeenCalledExactlyOnceWith('hello bob');
    expect(box).toHaveValue('');
  });

  it('inserts a newline on Shift+Enter without sending', async () => {
    const { onSend, box, user } = setup();
    await user.type(box, 'line one{Shift>}{Enter}{/Shift}line two');
    expect(onSend).not.toHaveBeenCalled();
    expect(box).toHaveValue('line one\nline two');

    await user.keyboard('{Enter}');
    expect(onSend).toHaveBeenCalledWith('line one\nline two');
  });

  it('does not send blank text', async () => {
    const { onSend, box, user } = setup();
    await user.type(box, '   {Enter}');
    expect(onSend).not.toHaveBeenCalled();
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();
  });

  it('keeps the text and shows the API message when sending fails', async () => {
    const onSend = vi.fn().mockRejectedValue(new ApiError(404, 'not_a_contact', 'bob is not a contact'));
    const { box, user } = setup(onSend);
    await user.type(box, 'hello{Enter}');
    expect(await screen.findByRole('alert')).toHaveTextContent('bob is not a contact');
    expect(box).toHaveValue('hello');
  });

  it('sends with the Send button too', async () => {
    const { onSend, box, user } = setup();
    await user.type(box, 'by click');
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(onSend).toHaveBeenCalledWith('by click');
  });

  it('shows attachments as not available yet', async () => {
    const { user } = setup();
    const attach = screen.getByRole('button', { name: 'Attach a file' });
    expect(attach).toHaveAttribute('aria-disabled', 'true');
    expect(attach).toHaveAccessibleDescription('File sharing is coming soon');
    expect(attach).toHaveAttribute('title', 'File sharing is coming soon');
    await user.click(attach); // does nothing, and does not submit the form
  });
});
