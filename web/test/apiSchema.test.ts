// @vitest-environment node
// The committed src/api/schema.gen.ts must be what crates/api/openapi.json generates
// now; src/api/types.ts checks the UI's types against it at compile time.

import { readFile } from 'node:fs/promises';
import { OUTPUT, generate } from '../scripts/gen-api.mjs';

test('src/api/schema.gen.ts is up to date with crates/api/openapi.json', async () => {
  const committed = await readFile(OUTPUT, 'utf8');
  const fresh = await generate();
  if (committed !== fresh) {
    throw new Error(
      'src/api/schema.gen.ts is stale: crates/api/openapi.json changed since it was generated. ' +
        'Run `npm run gen:api` in web/ and commit the result.',
    );
  }
});
