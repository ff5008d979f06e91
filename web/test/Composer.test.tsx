import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { createRef } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { ApiError, UPLOAD_CANCELLED, type UploadOptions } from '../src/api/client';
import { Composer, type ComposerHandle } from '../src/components/Composer';
import { testFile } from './helpers';

type SendFile = (file: File, caption: string, options: Omit<UploadOptions, 'text'>) => Promise<void>;

function setup(onSend = vi.fn().mockResolvedValue(undefined), onSendFile = vi.fn<SendFile>().mockResolvedValue(undefined)) {
  const ref = createRef<ComposerHandle>();
  render(<Composer ref={ref} label="Message to Bob" onSend={onSend} onSendFile={onSendFile} />);
  return {
    onSend,
    onSendFile,
    ref,
    box: screen.getByRole('textbox', { name: 'Message to Bob' }),
    picker: screen.getByTestId('file-picker') as HTMLInputElement,
    user: userEvent.setup(),
  };
}

/** An upload the test finishes by hand, with the progress callback it was given. */
function controlledUpload() {
  let finish: (error?: unknown) => void = () => {};
  let options: Omit<UploadOptions, 'text'> = {};
  const onSendFile = vi.fn<SendFile>(
    (_file, _caption, o) =>
      new Promise<void>((resolve, reject) => {
        options = o;
        o.signal?.addEventListener('abort', () => reject(new ApiError(0, UPLOAD_CANCELLED, 'cancelled')));
        finish = (error) => (error ? reject(error) : resolve());
      }),
  );
  return { onSendFile, finish: (error?: unknown) => finish(error), progress: (sent: number, total: number) => options.onProgress?.(sent, total) };
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

  it('sends a picked file with the text as its caption', async () => {
    const { onSend, onSendFile, picker, box, user } = setup();
    const file = testFile('report.pdf', 3 * 1024, 'application/pdf');
    await user.upload(picker, file);

    const attached = screen.getByRole('group', { name: 'Attached file' });
    expect(attached).toHaveTextContent('report.pdf');
    expect(attached).toHaveTextContent('3 KiB');
    // A file alone can be sent: the Send button is enabled with no text.
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled();

    await user.type(box, ' the figures {Enter}');
    expect(onSend).not.toHaveBeenCalled();
    expect(onSendFile).toHaveBeenCalledOnce();
    expect(onSendFile.mock.calls[0]?.[0]).toBe(file);
    expect(onSendFile.mock.calls[0]?.[1]).toBe('the figures');
    await waitFor(() => expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument());
    expect(box).toHaveValue('');
  });

  it('shows upload progress with aria values, then clears', async () => {
    const upload = controlledUpload();
    const { picker, user } = setup(undefined, upload.onSendFile);
    await user.upload(picker, testFile('big.bin', 200 * 1024));
    await user.click(screen.getByRole('button', { name: 'Send' }));

    const bar = screen.getByRole('progressbar', { name: 'Uploading big.bin' });
    expect(bar).toHaveAttribute('aria-valuenow', '0');
    act(() => upload.progress(50 * 1024, 200 * 1024));
    expect(bar).toHaveAttribute('aria-valuenow', '25');
    expect(bar).toHaveAttribute('aria-valuetext', '25%, 50 KiB of 200 KiB');
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('Uploading…');
    act(() => upload.progress(200 * 1024, 200 * 1024));
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('Preparing to send…');
    // No second send, and no other file, while one uploads.
    expect(screen.getByRole('button', { name: 'Attach a file' })).toBeDisabled();

    await act(async () => upload.finish());
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument();
  });

  it('keeps the file and the caption and says why when the file is too large', async () => {
    const upload = controlledUpload();
    const { picker, box, user } = setup(undefined, upload.onSendFile);
    await user.upload(picker, testFile('movie.mkv', 3 * 1024 * 1024));
    await user.type(box, 'our film{Enter}');
    await act(async () =>
      upload.finish(new ApiError(413, 'file_too_large', 'the file is 3145728 bytes; the limit is 1048576 bytes')),
    );

    expect(screen.getByRole('alert')).toHaveTextContent('“movie.mkv” (3 MiB) is too large to send; your node sends files up to 1 MiB.');
    expect(box).toHaveValue('our film');
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('movie.mkv');
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
  });

  it('shows other upload errors as the node words them', async () => {
    const onSendFile = vi.fn<SendFile>().mockRejectedValue(new ApiError(404, 'unknown_address', 'no identity record for that address'));
    const { picker, user } = setup(undefined, onSendFile);
    await user.upload(picker, testFile());
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('no identity record for that address');
    expect(screen.getByRole('group', { name: 'Attached file' })).toBeInTheDocument();
  });

  it('cancels an upload and keeps the file, without an error', async () => {
    const upload = controlledUpload();
    const { picker, user } = setup(undefined, upload.onSendFile);
    await user.upload(picker, testFile('slow.bin'));
    await user.click(screen.getByRole('button', { name: 'Send' }));
    await user.click(screen.getByRole('button', { name: 'Cancel uploading slow.bin' }));

    await waitFor(() => expect(screen.queryByRole('progressbar')).not.toBeInTheDocument());
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('slow.bin');
  });

  it('removes an attached file', async () => {
    const { picker, user } = setup();
    await user.upload(picker, testFile('oops.txt'));
    await user.click(screen.getByRole('button', { name: 'Remove oops.txt' }));
    expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();
  });

  it('attaches a file handed to it (a drop on the conversation)', async () => {
    const { ref, onSendFile, user } = setup();
    const file = testFile('dropped.png', 10, 'image/png');
    act(() => ref.current?.attach(file));
    expect(screen.getByRole('group', { name: 'Attached file' })).toHaveTextContent('dropped.png');
    await user.keyboard('{Enter}');
    expect(onSendFile.mock.calls[0]?.slice(0, 2)).toEqual([file, '']);
  });
});
