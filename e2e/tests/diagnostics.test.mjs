// Diagnostics in the dashboard (issue 12 item 2): the card badge (severity
// colour, count, tooltip) and the drawer's Diagnostics panel with working
// action buttons, in Chromium against a real gateway.
// Run: cd e2e && node --test --test-concurrency=1 tests/diagnostics.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { LAPTOP, launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { card, showCard, until } from '../lib/ui.mjs';

let gw;
let browser;
let page;
let stuck;
let cycling;

before(async () => {
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  // A blocked task is "stuck" at once, so no clock has to move.
  writeFileSync(join(gw.home, 'config.yaml'),
    'kanban:\n  dispatch_in_gateway: false\n  diagnostics:\n    blocked_stale_hours: 0\n');
  await gw.start();
  stuck = (await gw.createTask({ title: 'Waiting for credentials' })).id;
  gw.cli(['block', stuck]);
  cycling = (await gw.createTask({ title: 'Keeps blocking' })).id;
  // Alternate kinds: the same kind twice in a row trips the block-loop breaker.
  for (const [i, kind] of ['needs_input', 'capability', 'needs_input', 'capability'].entries()) {
    gw.cli(['block', cycling, '--kind', kind]);
    if (i < 3) gw.cli(['unblock', cycling]);
  }
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  page = await openDashboard(browser.context, gw, { viewport: LAPTOP });
});

after(async () => {
  if (page) assert.deepEqual(page.errors, [], 'console errors');
  await browser?.close();
  await gw?.dispose();
});

const badge = (id) => card(page, id).locator('.warn.diag-badge');

describe('diagnostics', () => {
  test('a card with diagnostics shows a coloured badge with count and tooltip', async () => {
    await showCard(page, stuck, 'blocked');
    await badge(stuck).waitFor();
    assert.match(await badge(stuck).getAttribute('class'), /warn-warning/);
    assert.equal((await badge(stuck).textContent()).trim(), '1');
    const tip = await badge(stuck).getAttribute('title');
    assert.match(tip, /stuck_in_blocked/);
    assert.match(tip, /\[warning\] Blocked for 0h/);
    // Cycling: two diagnostics (stuck and cycled), one badge counting them.
    await showCard(page, cycling, 'blocked');
    assert.match(await badge(cycling).getAttribute('title'), /block_unblock_cycling ×3/);
  });

  test('the drawer lists diagnostics with their actions; a CLI hint is copyable', async () => {
    await card(page, cycling).click();
    const panel = page.locator('#drawer .drawer-section.diagnostics');
    await panel.waitFor();
    const kinds = await panel.locator('.diagnostic').evaluateAll((els) => els.map((e) => e.dataset.kind));
    assert.deepEqual(kinds.sort(), ['block_unblock_cycling', 'stuck_in_blocked']);
    const hint = panel.locator('.diagnostic[data-kind="block_unblock_cycling"] .diag-command');
    assert.equal(await hint.textContent(), `kanban show ${cycling}`);
    // The comment action opens the comment box.
    await panel.locator('.diagnostic[data-kind="stuck_in_blocked"] button[data-action="comment"]').click();
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'comment');
    await page.locator('#drawer .drawer-close').click();
    await page.locator('#drawer').waitFor({ state: 'hidden' });
  });

  test('the unblock action unblocks the task and its badge goes away', async () => {
    await card(page, stuck).click();
    const panel = page.locator('#drawer .drawer-section.diagnostics');
    await panel.waitFor();
    await panel.locator('button[data-action="unblock"]').click();
    await until(async () => (await gw.task(stuck)).task.status === 'ready', { message: 'the task is ready' });
    await panel.waitFor({ state: 'detached' });
    await showCard(page, stuck, 'ready');
    await until(async () => (await badge(stuck).count()) === 0, { message: 'the badge cleared' });
    const list = await gw.api('GET', '/diagnostics');
    assert.equal(list.diagnostics.some((r) => r.task_id === stuck), false);
  });
});
