// A contact's presence, from `usePresence` (`unknown` until the node has told us).

export type Presence = 'online' | 'away' | 'busy' | 'offline' | 'unknown';

const LABELS: Record<Presence, string> = {
  online: 'Online',
  away: 'Away',
  busy: 'Busy',
  offline: 'Offline',
  unknown: 'Presence unknown',
};

export function PresenceDot({ status = 'unknown' }: { status?: Presence }) {
  return <span className={`presence presence-${status}`} role="img" aria-label={LABELS[status]} title={LABELS[status]} />;
}
