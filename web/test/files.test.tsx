import { act, render, renderHook, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/api/client';
import type { Attachment } from '../src/api/types';
import { AttachmentCard, transferText } from '../src/components/AttachmentCard';
import { parseEvent } from '../src/hooks/useEvents';
import { downloadable, liveAttachment, useTransfers, type LiveAttachment } from '../src/hooks/useTransfers';
import { formatSize, percent } from '../src/lib/format';
import { formatRate, formatTimeLeft, nextPace, paceText } from '../src/lib/rate';
import { BOB, json, mockFetch, sessionWrapper } from './helpers';

const FILE_ID = 'f1'.repeat(16);

function attachment(over: Partial<Attachment> = {}): Attachment {
  return {
    file_id: FILE_ID,
    name: 'report.pdf',
    size: 200 * 1024,
    blake3: 'ab'.repeat(32),
    media_type: 'application/pdf',
    status: 'pending',
    progress: 0,
    ...over,
  };
}

function progress(bytes: number, status: Attachment['status'] = 'downloading', direction: 'in' | 'out' = 'in') {
  return { type: 'file_progress' as const, file_id: FILE_ID, message_id: 'a'.repeat(32), peer: BOB, direction, bytes, size: 200 * 1024, status };
}

describe('formatSize', () => {
  it('writes bytes for people', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(812)).toBe('812 B');
    expect(formatSize(200 * 1024)).toBe('200 KiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(3.25 * 1024 * 1024)).toBe('3.25 MiB');
    expect(formatSize(1 << 30)).toBe('1 GiB');
    expect(percent(1, 3)).toBe(33);
    expect(percent(5, 0)).toBe(100);
  });
});

describe('speed and time left', () => {
  it('smooths the rate and ignores events too close together', () => {
    const first = nextPace(undefined, 0, 0);
    expect(first.rate).toBeUndefined();
    expect(nextPace(first, 1000, 100)).toBe(first);
    const second = nextPace(first, 10_000, 1000);
    expect(second.rate).toBe(10_000);
    const third = nextPace(second, 40_000, 2000);
    expect(third.rate).toBeCloseTo(0.3 * 30_000 + 0.7 * 10_000);
    // Fewer bytes than before: a restart, measured afresh.
    expect(nextPace(third, 5, 3000)).toEqual({ at: 3000, bytes: 5 });
  });

  it('writes speed and time left for people', () => {
    expect(formatRate(850)).toBe('850 B/s');
    expect(formatRate(12.5 * 1024 * 1024)).toBe('12.5 MiB/s');
    expect(formatRate(150 * 1024)).toBe('150 KiB/s');
    expect(formatTimeLeft(8_000, 1_000)).toBe('8 s left');
    expect(formatTimeLeft(180_000, 1_000)).toBe('3 min left');
    expect(formatTimeLeft(3_900_000, 1_000)).toBe('1 h 5 min left');
    expect(formatTimeLeft(7_200_000, 1_000)).toBe('2 h left');
    expect(formatTimeLeft(1_000, undefined)).toBe('');
    expect(formatTimeLeft(0, 1_000)).toBe('');
    expect(paceText(0, 1024 * 1024, undefined)).toBe('');
    expect(paceText(512 * 1024, 1024 * 1024, 256 * 1024)).toBe('256 KiB/s · 2 s left');
  });
});

describe('file events', () => {
  it('parses file_progress and message_received with an attachment', () => {
    expect(parseEvent(JSON.stringify(progress(10)))).toEqual(progress(10));
    expect(parseEvent(JSON.stringify({ ...progress(10), status: 'teleporting' }))).toBeNull();
    const received = { type: 'message_received', id: 'a'.repeat(32), from: BOB, text: '', timestamp: 1, position: 1e15, attachment: attachment() };
    expect(parseEvent(JSON.stringify(received))).toEqual(received);
    expect(parseEvent(JSON.stringify({ ...received, attachment: { name: 'x' } }))).toBeNull();
  });
});

describe('useTransfers', () => {
  it('keeps the newest progress of each file from events', () => {
    const { result } = renderHook(() => useTransfers(), { wrapper: sessionWrapper(mockFetch({}).fetch) });
    act(() => result.current.handleEvent(progress(50 * 1024)));
    act(() => result.current.handleEvent(progress(100 * 1024)));
    act(() => result.current.handleEvent({ type: 'typing', from: BOB, typing: true }));
    expect(result.current.transfers[FILE_ID]).toMatchObject({ direction: 'in', bytes: 100 * 1024, size: 200 * 1024, status: 'downloading' });
    expect(Object.keys(result.current.transfers)).toEqual([FILE_ID]);
  });

  it('measures the speed from events a little apart, afresh for each phase', () => {
    const now = vi.spyOn(performance, 'now');
    const { result } = renderHook(() => useTransfers(), { wrapper: sessionWrapper(mockFetch({}).fetch) });
    now.mockReturnValue(1_000);
    act(() => result.current.handleEvent(progress(0)));
    expect(result.current.transfers[FILE_ID]?.pace?.rate).toBeUndefined();
    now.mockReturnValue(2_000);
    act(() => result.current.handleEvent(progress(50 * 1024)));
    expect(result.current.transfers[FILE_ID]?.pace?.rate).toBe(50 * 1024);
    const live = liveAttachment(attachment(), 'in', result.current.transfers[FILE_ID]);
    expect(transferText(live, 'in', 'Bob')).toBe('Downloading… 25% · 50 KiB/s · 3 s left');
    now.mockReturnValue(3_000);
    act(() => result.current.handleEvent(progress(60 * 1024, 'failed')));
    expect(result.current.transfers[FILE_ID]?.pace?.rate).toBeUndefined();
    now.mockRestore();
  });

  it('asks the node to fetch a file and records its answer', async () => {
    const { fetch, calls } = mockFetch({ [`POST /v1/files/${FILE_ID}/fetch`]: json(202, attachment({ status: 'downloading', progress: 0 })) });
    const { result } = renderHook(() => useTransfers(), { wrapper: sessionWrapper(fetch) });
    await act(() => result.current.fetchFile(FILE_ID));
    expect(calls[0]?.method).toBe('POST');
    expect(result.current.transfers[FILE_ID]?.status).toBe('downloading');
  });

  it('joins an attachment with its transfer; done stays done', () => {
    const live = liveAttachment(attachment(), 'in', { direction: 'in', bytes: 1024, size: 200 * 1024, status: 'downloading' });
    expect(live).toMatchObject({ status: 'downloading', progress: 1024 });
    const done = attachment({ status: 'done', progress: 200 * 1024 });
    expect(liveAttachment(done, 'in', { direction: 'in', bytes: 10, size: 200 * 1024, status: 'downloading' })).toBe(done);
    const sent = liveAttachment(attachment({ status: 'offered' }), 'out', { direction: 'out', bytes: 4096, size: 200 * 1024, status: 'offered' });
    expect(sent).toMatchObject({ status: 'offered', fetched: 4096 });
    // Issue 23 item 2: bytes left with the mailbox servers are not the recipient's.
    const size = 200 * 1024;
    const stored = liveAttachment(attachment({ status: 'offered' }), 'out', { direction: 'out', bytes: size, size, status: 'stored' });
    expect(stored.fetched).toBeUndefined();
    expect(transferText(stored, 'out', 'Bob')).toBe('Waiting in mailboxes for Bob');
    const uploading = liveAttachment(attachment({ status: 'offered' }), 'out', { direction: 'out', bytes: size / 2, size, status: 'uploading' });
    expect(transferText(uploading, 'out', 'Bob')).toBe('Leaving it in mailboxes for Bob… 50%');
    const fetched = liveAttachment(attachment({ status: 'stored' }), 'out', { direction: 'out', bytes: size, size, status: 'fetched' });
    expect(transferText(fetched, 'out', 'Bob')).toBe('Downloaded by Bob');
    // A late upload event cannot undo "downloaded".
    expect(transferText(liveAttachment(attachment({ status: 'fetched' }), 'out', { direction: 'out', bytes: size, size, status: 'stored' }), 'out', 'Bob')).toBe('Downloaded by Bob');
    expect(downloadable(attachment({ status: 'downloading' }), 'in')).toBe(false);
    expect(downloadable(attachment({ status: 'done' }), 'in')).toBe(true);
    expect(downloadable(attachment({ status: 'offered' }), 'out')).toBe(true);
  });
});

function card(a: LiveAttachment, direction: 'in' | 'out' = 'in', onFetch = vi.fn().mockResolvedValue(undefined)) {
  const view = render(<AttachmentCard attachment={a} direction={direction} peerName="Bob" onFetch={onFetch} />);
  return { ...view, onFetch, user: userEvent.setup() };
}

describe('AttachmentCard', () => {
  it('shows a received file’s progress with aria values and no download link until done', () => {
    const { rerender } = card(attachment({ status: 'downloading', progress: 50 * 1024 }));
    expect(screen.getByText('report.pdf')).toBeInTheDocument();
    expect(screen.getByText(/200 KiB/)).toHaveTextContent('200 KiB · Downloading… 25%');
    const bar = screen.getByRole('progressbar', { name: 'Downloading report.pdf' });
    expect(bar).toHaveAttribute('aria-valuenow', '25');
    expect(bar).toHaveAttribute('aria-valuemin', '0');
    expect(bar).toHaveAttribute('aria-valuemax', '100');
    expect(screen.queryByRole('link')).not.toBeInTheDocument();

    rerender(<AttachmentCard attachment={attachment({ status: 'done', progress: 200 * 1024 })} direction="in" peerName="Bob" onFetch={vi.fn()} />);
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    // Saved by the node; the link saves another copy (issue 23 item 8).
    expect(screen.getByText(/200 KiB/)).toHaveTextContent('200 KiB · Saved');
    expect(screen.queryByText(/Downloaded/)).not.toBeInTheDocument();
    const link = screen.getByRole('link', { name: 'Save again: report.pdf' });
    expect(link).toHaveAttribute('href', `/v1/files/${FILE_ID}/content`);
    expect(link).toHaveTextContent('Save again');
  });

  it('links to a sent file at once and shows the recipient fetching it', () => {
    card({ ...attachment({ status: 'offered', progress: 200 * 1024 }), fetched: 100 * 1024 }, 'out');
    expect(screen.getByRole('link', { name: 'Download report.pdf' })).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'Bob downloading report.pdf' })).toHaveAttribute('aria-valuenow', '50');
    expect(screen.getByText(/Bob is downloading… 50%/)).toBeInTheDocument();
  });

  it('says a sent file reached the recipient once their node has it all, also after a reload', () => {
    card(attachment({ status: 'fetched', progress: 200 * 1024 }), 'out');
    expect(screen.getByText(/200 KiB/)).toHaveTextContent('200 KiB · Downloaded by Bob');
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Download report.pdf' })).toBeInTheDocument();
  });

  it('offers to fetch a file over the automatic download size, and shows why fetching failed', async () => {
    const onFetch = vi.fn().mockRejectedValue(new ApiError(404, 'not_found', 'no file'));
    const { user } = card(attachment({ status: 'too_large' }), 'in', onFetch);
    expect(screen.getByText(/larger than your automatic download size/)).toBeInTheDocument();
    expect(screen.queryByRole('link')).not.toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Fetch report.pdf' }));
    expect(onFetch).toHaveBeenCalledOnce();
    expect(await screen.findByRole('alert')).toHaveTextContent('no file');
  });

  it('offers to fetch a failed file again, with the reason', () => {
    const { container } = card(attachment({ status: 'failed', error: 'no peer had it' }));
    expect(within(container).getByText(/Download failed: no peer had it/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Fetch report.pdf again' })).toHaveTextContent('Fetch again');
  });
});
