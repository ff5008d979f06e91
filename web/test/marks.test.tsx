import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { MESSAGE_STATUSES } from '../src/api/types';
import { PresenceDot } from '../src/components/PresenceDot';
import { STATUS_LABELS, StatusMark } from '../src/components/StatusMark';

describe('StatusMark', () => {
  it.each(MESSAGE_STATUSES)('labels %s for screen readers', (status) => {
    render(<StatusMark status={status} />);
    const mark = screen.getByRole('img', { name: STATUS_LABELS[status] });
    expect(mark).toHaveAttribute('data-status', status);
  });

  it('draws a different icon and label for every status', () => {
    const icons = new Set<string>();
    const labels = new Set<string>();
    for (const status of MESSAGE_STATUSES) {
      const { container, unmount } = render(<StatusMark status={status} />);
      icons.add(container.querySelector('svg')?.innerHTML ?? '');
      labels.add(screen.getByRole('img').getAttribute('aria-label') ?? '');
      unmount();
    }
    expect(icons.size).toBe(MESSAGE_STATUSES.length);
    expect(labels.size).toBe(MESSAGE_STATUSES.length);
  });
});

describe('PresenceDot', () => {
  it('is neutral and says so until presence is known', () => {
    render(<PresenceDot />);
    expect(screen.getByRole('img', { name: 'Presence unknown' })).toHaveClass('presence-unknown');
  });

  it('lights up for a known status', () => {
    render(<PresenceDot status="online" />);
    expect(screen.getByRole('img', { name: 'Online' })).toHaveClass('presence-online');
  });
});
