// End-to-end: the Review column's actions in the drawer, against a real
// gateway whose dispatcher runs with `kanban.review_dispatch: false` (cards
// in Review wait for a human), then, after a live config change, spawns a
// reviewer whose attempt the dashboard approves.
// Run: cd e2e && npm test   (see docs/dashboard.md)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { card, cardIn, dialog, showCard, until } from '../lib/ui.mjs';

let gw;
let browser;
let page;

/** `rev` is a spawnable profile whose worker just waits; `coder` is no profile (never spawned). */
function writeConfig(reviewDispatch) {
  writeFileSync(join(gw.home, 'config.yaml'), [
    'kanban:',
    `  review_dispatch: ${reviewDispatch}`,
    '  profiles:',
    '    rev:',
    '      command: ["sleep", "300"]',
    '',
  ].join('\n'));
}

async function openDrawer(id, status) {
  await showCard(page, id, status);
  await card(page, id).click();
  const drawer = page.locator('#drawer');
  await drawer.locator(`.drawer-head .card-id`, { hasText: id }).waitFor();
  return drawer;
}

const lastRun = async (id) => (await gw.task(id)).runs.at(-1);

before(async () => {
  gw = await Gateway.create();
  writeConfig(false);
  await gw.start();
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  page = await openDashboard(browser.context, gw);
});

after(async () => {
  const expected = /WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|Content Security Policy/;
  if (page) assert.deepEqual(page.errors.filter((e) => !expected.test(e)), []);
  await browser?.close();
  await gw?.dispose();
});

describe('review column', () => {
  let id;

  test('request review from a ready card: it waits in Review (review_dispatch off)', async () => {
    id = (await gw.createTask({ title: 'Parser rewrite', assignee: 'coder' })).id;
    const drawer = await openDrawer(id, 'ready');
    assert.equal(await drawer.locator('[data-review=approve]').count(), 0);
    await drawer.locator('[data-review=request]').click();
    const d = dialog(page);
    await d.waitFor();
    // The summary is required: an empty one keeps the dialog open, nothing sent.
    await d.locator('button[type=submit]').click();
    assert.equal(await d.count(), 1);
    assert.equal((await gw.task(id)).task.status, 'ready');
    await d.locator('[name=summary]').fill('Rewrote the parser; tests in parser_tests.rs');
    await d.locator('[name=reviewer]').fill('rev');
    await d.locator('button[type=submit]').click();
    await d.waitFor({ state: 'detached' });
    await cardIn(page, 'review', id).waitFor();
    const t = await gw.task(id);
    assert.equal(t.task.status, 'review');
    assert.equal(t.task.assignee, 'rev');
    assert.equal((await lastRun(id)).outcome, 'review_requested');
    // The dispatcher leaves it alone while review_dispatch is off.
    const r = await gw.api('POST', '/dispatch');
    assert.deepEqual(r.spawned, []);
    assert.equal((await gw.task(id)).task.status, 'review');
  });

  test('request changes on a card waiting in Review sends it back to its implementer', async () => {
    const drawer = await openDrawer(id, 'review');
    assert.equal(await drawer.locator('[data-review=request]').count(), 0);
    await drawer.locator('[data-review=changes]').click();
    const d = dialog(page);
    await d.waitFor();
    await d.locator('button[type=submit]').click();
    assert.equal(await d.count(), 1, 'a reason is required');
    await d.locator('[name=reason]').fill('Handle empty input');
    await d.locator('button[type=submit]').click();
    await d.waitFor({ state: 'detached' });
    await cardIn(page, 'ready', id).waitFor();
    const t = await gw.task(id);
    assert.equal(t.task.assignee, 'coder');
    const run = await lastRun(id);
    assert.equal(run.outcome, 'changes_requested');
    assert.equal(run.summary, 'Handle empty input');
  });

  test('a card waiting in Review is not moved to done, but approved', async () => {
    await gw.api('POST', `/tasks/${id}/request-review`, { summary: 'Handled empty input', reviewer: 'rev' });
    await showCard(page, id, 'review');
    await assert.rejects(gw.api('PATCH', `/tasks/${id}`, { status: 'done' }), /409/);
    assert.equal((await gw.task(id)).task.status, 'review');
    const drawer = await openDrawer(id, 'review');
    await drawer.locator('[data-review=approve]').click();
    const d = dialog(page);
    await d.waitFor();
    await d.locator('[name=summary]').fill('Reviewed by hand: fine');
    await d.locator('button[type=submit]').click();
    await d.waitFor({ state: 'detached' });
    await cardIn(page, 'done', id).waitFor();
    const t = await gw.task(id);
    assert.equal(t.task.status, 'done');
    const run = await lastRun(id);
    assert.equal(run.outcome, 'completed');
    assert.equal(run.summary, 'Reviewed by hand: fine');
    const approved = t.events.filter((e) => e.kind === 'completed').at(-1);
    assert.equal(approved.payload.source, 'approve');
  });

  test('with review_dispatch on (live), a reviewer starts and the drawer approves its attempt', async () => {
    const t0 = await gw.createTask({ title: 'Cache layer', assignee: 'coder' });
    await gw.api('POST', `/tasks/${t0.id}/request-review`, { summary: 'Cache in place', reviewer: 'rev' });
    writeConfig(true);
    await until(async () => {
      await gw.api('POST', '/dispatch');
      return (await gw.task(t0.id)).task.status === 'running';
    }, { timeout: 10_000, message: 'the reviewer to start' });
    const drawer = await openDrawer(t0.id, 'running');
    await drawer.locator('[data-review=approve]').waitFor();
    assert.equal(await drawer.locator('[data-review=request]').count(), 0, 'a review attempt is not handed to review');
    await drawer.locator('[data-review=approve]').click();
    const d = dialog(page);
    await d.waitFor();
    await d.locator('[name=summary]').fill('LGTM');
    await d.locator('button[type=submit]').click();
    await d.waitFor({ state: 'detached' });
    await cardIn(page, 'done', t0.id).waitFor();
    const run = await lastRun(t0.id);
    assert.equal(run.outcome, 'completed');
    assert.equal(run.summary, 'LGTM');
  });
});
