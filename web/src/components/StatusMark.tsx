// The delivery mark of an outgoing message: a distinct icon per status, with text
// for screen readers and a tooltip for everyone.

import type { ReactElement } from 'react';
import type { MessageStatus } from '../api/types';
import { AlertIcon, CheckIcon, ClockIcon, DoubleCheckIcon, MailboxIcon, ReadIcon } from './icons';

export const STATUS_LABELS: Record<MessageStatus, string> = {
  queued: 'Queued, not sent yet',
  sent: 'Sent',
  stored: 'Stored in the recipient’s mailbox until they come online',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Not delivered',
};

const ICONS: Record<MessageStatus, () => ReactElement> = {
  queued: ClockIcon,
  sent: CheckIcon,
  stored: MailboxIcon,
  delivered: DoubleCheckIcon,
  read: ReadIcon,
  failed: AlertIcon,
};

export function StatusMark({ status }: { status: MessageStatus }) {
  const Icon = ICONS[status];
  const label = STATUS_LABELS[status];
  return (
    <span className={`mark mark-${status}`} role="img" aria-label={label} title={label} data-status={status}>
      <Icon />
    </span>
  );
}
