// This node's own four-word address: what people type to reach you.

import { CopyButton } from './CopyButton';
import { QrCode } from './QrCode';
import { QrIcon } from './icons';

interface Props {
  address: string | null;
  /** Large, with the QR code inline (the welcome screen); else compact. */
  large?: boolean;
  onShowQr?: () => void;
}

export function MyAddress({ address, large = false, onShowQr }: Props) {
  return (
    <section className={large ? 'my-address my-address-large' : 'my-address'} aria-label="Your address">
      <h2 className="eyebrow">Your address</h2>
      {address ? (
        <>
          <p className="address" translate="no">
            {address}
          </p>
          {large && <QrCode text={address} size={208} label={`QR code of your address, ${address}`} />}
          <div className="row">
            <CopyButton text={address} label="Copy address" />
            {!large && onShowQr && (
              <button type="button" className="button" onClick={onShowQr}>
                <QrIcon /> QR code
              </button>
            )}
          </div>
        </>
      ) : (
        <p className="muted">Loading…</p>
      )}
    </section>
  );
}
