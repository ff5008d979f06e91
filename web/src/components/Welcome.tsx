// The main pane before a conversation is open: your address to share.

import { MyAddress } from './MyAddress';
import { PlusIcon } from './icons';

export function Welcome({ address, onAddContact }: { address: string | null; onAddContact: () => void }) {
  return (
    <section className="welcome" aria-labelledby="welcome-title">
      <h2 id="welcome-title">Welcome to Communitas</h2>
      <p className="muted">
        Share your four words so people can reach you, or add someone by theirs. Messages are end-to-end encrypted and
        travel without a server.
      </p>
      <MyAddress address={address} large />
      <button type="button" className="button primary" onClick={onAddContact}>
        <PlusIcon /> Add a contact
      </button>
    </section>
  );
}
