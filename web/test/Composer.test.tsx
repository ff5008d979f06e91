import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { createRef } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/api/client';
import { Composer, type ComposerHandle } from '../src/components/Composer';
import { testFile } from './helpers';

type SendFiles = (files: File[], caption: string) => void;

function setup(onSend = vi.fn().mockResolvedValue(undefined), onSendFiles = vi.fn<SendFiles>()) {
  const ref = createRef<ComposerHandle>();
  render(<Composer ref={ref} label="Message to Bob" onSend={onSend} onSendFiles={onSendFiles} />);
  return {
    onSend,
    onSendFiles,
    ref,
    box: screen.getByRole('textbox', { name: 'Message to Bob' }),
    picker: screen.getByTestId('file-picker') as HTMLInputElement,
    user: userEvent.setup(),
  };
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

  it('opens the file picker from a labelled, keyboard-reachable button', async () => {
    const { picker, user } = setup();
    const click = vi.spyOn(picker, 'click');
    const attach = screen.getByRole('button', { name: 'Attach a file' });
    attach.focus();
    await user.keyboard('{Enter}');
    expect(click).toHaveBeenCalledOnce();
  });

  it('hands a picked file to the upload queue with the text as its caption', async () => {
    const { onSend, onSendFiles, picker, box, user } = setup();
    const file = testFile('report.pdf', 3 * 1024, 'application/pdf');
    await user.upload(picker, file);

    const attached = screen.getByRole('group', { name: 'Attached file' });
    expect(attached).toHaveTextContent('report.pdf');
    expect(attached).toHaveTextContent('3 KiB');
    // A file alone can be sent: the Send button is enabled with no text.
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled();

    await user.type(box, ' the figures {Enter}');
    expect(onSend).not.toHaveBeenCalled();
    expect(onSendFiles).toHaveBeenCalledExactlyOnceWith([file], 'the figures');
    // Queued, so the composer is free at once for the next message.
    expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument();
    expect(box).toHaveValue('');
    expect(screen.getByRole('button', { name: 'Attach a file' })).toBeEnabled();
  });

  it('attaches several picked files and sends them together, the caption once', async () => {
    const { onSendFiles, picker, box, user } = setup();
    const files = [testFile('a.txt', 10), testFile('b.txt', 20), testFile('c.txt', 30)];
    await user.upload(picker, files);
    const attached = screen.getByRole('group', { name: '3 attached files' });
    expect(within(attached).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      expect.stringContaining('a.txt'),
      expect.stringContaining('b.txt'),
      expect.stringContaining('c.txt'),
    ]);
    expect(screen.getByText(/the first file’s caption/)).toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Remove b.txt' }));
    expect(screen.getByRole('group', { name: '2 attached files' })).not.toHaveTextContent('b.txt');
    await user.type(box, 'two of three{Enter}');
    expect(onSendFiles).toHaveBeenCalledExactlyOnceWith([files[0], files[2]], 'two of three');
  });

  it('removes an attached file', async () => {
    const { picker, user } = setup();
    await user.upload(picker, testFile('oops.txt'));
    await user.click(screen.getByRole('button', { name: 'Remove oops.txt' }));
    expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();
  });

  it('attaches files handed to it (a drop on the conversation)', async () => {
    const { ref, onSendFiles, user } = setup();
    const file = testFile('dropped.png', 10, 'image/png');
    act(() => ref.current?.attach([file]));
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('dropped.png');
    await user.keyboard('{Enter}');
    expect(onSendFiles).toHaveBeenCalledExactlyOnceWith([file], '');
  });
});
