// How fast a transfer moves and how long it has left, from the progress events as
// they come (issue 17 item 5). A smoothed rate, so that one late event does not make
// the time left jump about; nothing is shown until two events a little apart exist.

/** What is kept per transfer to estimate its speed. */
export interface Pace {
  /** When `bytes` were reached, ms (performance or wall clock: only differences count). */
  at: number;
  bytes: number;
  /** Bytes per second, smoothed; absent until measured. */
  rate?: number;
}

/** Events closer together than this are folded into the next one: too short to measure. */
const MIN_GAP_MS = 200;
/** Weight of the newest measurement in the smoothed rate. */
const WEIGHT = 0.3;

/** The pace after `bytes` were reached at `now`, given the one before (if any). */
export function nextPace(before: Pace | undefined, bytes: number, now: number): Pace {
  if (!before || bytes < before.bytes) return { at: now, bytes };
  const gap = now - before.at;
  if (gap < MIN_GAP_MS) return before;
  const measured = ((bytes - before.bytes) * 1000) / gap;
  const rate = before.rate === undefined ? measured : WEIGHT * measured + (1 - WEIGHT) * before.rate;
  return { at: now, bytes, rate };
}

/** Bytes per second for people: `850 KiB/s`, `12.5 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
  let value = Math.max(0, bytesPerSecond);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const text = value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1);
  return `${text.replace(/\.0$/, '')} ${units[unit]}`;
}

/** Time left for people: `8 s left`, `3 min left`, `1 h 5 min left`; empty when unknown. */
export function formatTimeLeft(left: number, bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined || bytesPerSecond <= 0 || left <= 0) return '';
  const seconds = Math.ceil(left / bytesPerSecond);
  if (seconds < 60) return `${seconds} s left`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min left`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min left` : `${hours} h left`;
}

/** `12.5 MiB/s · 8 s left`, or empty while the speed is not known. */
export function paceText(done: number, total: number, rate: number | undefined): string {
  if (rate === undefined) return '';
  const left = formatTimeLeft(total - done, rate);
  return left ? `${formatRate(rate)} · ${left}` : formatRate(rate);
}
