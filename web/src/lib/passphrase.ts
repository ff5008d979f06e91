// The one passphrase rule (issue 23 item 6), the node's: `keystore::MIN_PASSPHRASE_CHARS`
// in Rust, published as a `const` in openapi.json. The constant below is typed from
// that document, so a change on the node's side fails `npm run typecheck` here until
// this follows; the message is the node's (`passphrase_too_short`) word for word.

import type { components } from '../api/schema.gen';

/** The fewest characters (code points, as people count them) a new passphrase may have. */
export const MIN_PASSPHRASE_CHARS: components['schemas']['Identity']['passphrase_min_chars'] = 8;

/** What the CLI, the API and this UI say about a passphrase that is too short. */
export const PASSPHRASE_TOO_SHORT = `The passphrase is too short: use at least ${MIN_PASSPHRASE_CHARS} characters.`;

/** A new passphrase under the rule. */
export function tooShort(passphrase: string): boolean {
  return [...passphrase].length < MIN_PASSPHRASE_CHARS;
}
