// Accessibility checks with axe-core inside the page under test: every rule axe
// rates serious or critical must pass. Used by the end-to-end tests on each screen.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe on `page` and fails with the rules broken, if any serious one is. */
export async function assertAccessible(page, screen) {
  // Injected as a script: the app's CSP allows only its own scripts, but Playwright's
  // evaluate runs outside the page's CSP.
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  const serious = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${screen}: accessibility rules broken:\n${JSON.stringify(serious, null, 2)}`);
}
