// A labelled progress bar: the percentage for assistive technology, bytes in its
// value text, and a bar for the eyes.

import { formatSize, percent } from '../lib/format';

interface Props {
  /** The accessible name, e.g. "Downloading report.pdf". */
  label: string;
  done: number;
  total: number;
}

export function ProgressBar({ label, done, total }: Props) {
  const value = percent(done, total);
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value}
      aria-valuetext={`${value}%, ${formatSize(done)} of ${formatSize(total)}`}
    >
      <div className="progress-fill" style={{ width: `${value}%` }} />
    </div>
  );
}
