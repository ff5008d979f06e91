// A QR code drawn as one SVG path from the `qrcode` library's module matrix, so it
// scales crisply and needs no canvas.

import { useMemo } from 'react';
import { create } from 'qrcode';

/** Light modules around the symbol, as the QR spec asks. */
const QUIET_ZONE = 4;

export function qrPath(text: string): { d: string; size: number } {
  const { modules } = create(text, { errorCorrectionLevel: 'M' });
  const parts: string[] = [];
  for (let row = 0; row < modules.size; row += 1) {
    for (let col = 0; col < modules.size; col += 1) {
      if (modules.get(row, col)) parts.push(`M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`);
    }
  }
  return { d: parts.join(''), size: modules.size + 2 * QUIET_ZONE };
}

export function QrCode({ text, size = 192, label }: { text: string; size?: number; label?: string }) {
  const { d, size: modules } = useMemo(() => qrPath(text), [text]);
  return (
    <svg
      className="qr"
      role="img"
      aria-label={label ?? `QR code of ${text}`}
      viewBox={`0 0 ${modules} ${modules}`}
      width={size}
      height={size}
      shapeRendering="crispEdges"
    >
      <rect width={modules} height={modules} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
