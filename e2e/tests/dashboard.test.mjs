// End-to-end: the dashboard in headless Chromium against a real gateway.
// Run: cd e2e && npm test   (see docs/dashboard.md)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { launch, openDashboard, serveWebFromDisk, DOCS_SCREENSHOTS, SCREENSHOTS, WIDE, NARROW } from '../lib/browser.mjs';
import { card, cardIn, column, dialog, drag, showCard, submitDialog, until } from '../lib/ui.mjs';

let gw;
let browser;

/** Before a screenshot: no toasts, board and columns scrolled to the start. */
async function tidy(p) {
  await p.evaluate(() => {
    document.getElementById('toasts').replaceChildren();
    document.getElementById('board').scrollLeft = 0;
    for (const c of document.querySelectorAll('.col-scroll')) c.scrollTop = 0;
  });
  await p.waitForTimeout(100);
}
let page;

/** The tracked pictures in docs/screenshots/ (name → sha256): the tests must leave them alone. */
function docsPictures() {
  const out = {};
  for (const f of readdirSync(DOCS_SCREENSHOTS)) out[f] = createHash('sha256').update(readFileSync(join(DOCS_SCREENSHOTS, f))).digest('hex');
  return out;
}
const picturesBefore = docsPictures();

before(async () => {
  // No dispatcher: nothing races the tests for the tasks they move, and
  // creating a ready, assigned task must then show the warning banner.
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  await gw.start();
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Some content so the screenshots show a living board.
  const spec = await gw.createTask({ title: 'Write the spec', assignee: 'planner', tenant: 'acme', priority: 2,
    body: '## Goal\nDescribe **everything**.\n\n- [x] outline\n- [ ] review' });
  const impl = await gw.createTask({ title: 'Implement the parser', assignee: 'coder', tenant: 'acme', parents: [spec.id] });
  await gw.createTask({ title: 'Add CI job', assignee: 'coder', parents: [spec.id] });
  await gw.createTask({ title: 'Explore caching idea', triage: true });
  await gw.createTask({ title: 'Benchmark the store', assignee: 'perf', tenant: 'lab', priority: -1 });
  const run1 = await gw.createTask({ title: 'Refactor the dispatcher loop', assignee: 'coder' });
  const run2 = await gw.createTask({ title: 'Draft release notes', assignee: 'writer' });
  gw.cli(['claim', run1.id]);
  gw.cli(['claim', run2.id]);
  const done = await gw.createTask({ title: 'Set up repository', assignee: 'planner' });
  gw.cli(['complete', done.id, '--summary', 'Repository ready']);
  await gw.api('POST', `/tasks/${impl.id}/comments`, { body: 'Parser should stream.' });
  page = await openDashboard(browser.context, gw);
});

after(async () => {
  // Expected noise: the feed's reconnect attempts while the gateway is down,
  // refused moves (4xx), and Chromium reporting the CSP refusing inline
  // handlers while DOMPurify parses hostile markup (it never runs either way).
  const expected = /WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|Content Security Policy/;
  if (page) assert.deepEqual(page.errors.filter((e) => !expected.test(e)), []);
  await browser?.close();
  await gw?.dispose();
  // Screenshots go to target/ (SCREENSHOTS); docs/ changes only by `npm run screenshots`.
  assert.deepEqual(docsPictures(), picturesBefore, 'the tests rewrote docs/screenshots/');
});

describe('dashboard', () => {
  test('create a task from the UI and see it in Ready (with the dispatcher warning banner)', async () => {
    await column(page, 'ready').locator('.col-add').click();
    const form = column(page, 'ready').locator('form.create-form');
    await form.locator('[name=title]').fill('Ship the dashboard');
    await form.locator('[name=assignee]').fill('coder');
    await form.locator('[name=priority]').fill('3');
    await form.locator('button[type=submit]').click();
    const created = page.locator('.column[data-status="ready"] .card', { hasText: 'Ship the dashboard' });
    await created.waitFor();
    const id = await created.getAttribute('data-id');
    const detail = await gw.task(id);
    assert.equal(detail.task.status, 'ready');
    assert.equal(detail.task.assignee, 'coder');
    assert.equal(detail.task.priority, 3);
    assert.equal(detail.task.created_by, 'dashboard');
    // No dispatcher runs next to this API: the create warning is a banner.
    await page.locator('.banner-warn').waitFor();
    await column(page, 'ready').locator('.col-add').click();
  });

  test('triage column creates triage tasks', async () => {
    await column(page, 'triage').locator('.col-add').click();
    const form = column(page, 'triage').locator('form.create-form');
    await form.locator('[name=title]').fill('Maybe: dark mode for the CLI');
    await form.locator('button[type=submit]').click();
    const c = page.locator('.column[data-status="triage"] .card', { hasText: 'Maybe: dark mode' });
    await c.waitFor();
    assert.equal((await gw.task(await c.getAttribute('data-id'))).task.status, 'triage');
    await column(page, 'triage').locator('.col-add').click();
  });

  test('drag a task to Blocked (confirm + reason) and back to Ready', async () => {
    const t = await gw.createTask({ title: 'Drag me around', assignee: 'coder' });
    await showCard(page, t.id, 'ready');
    await drag(page, t.id, 'blocked');
    await submitDialog(page, { reason: 'waiting for the API key' });
    await showCard(page, t.id, 'blocked');
    await until(async () => (await gw.task(t.id)).task.status === 'blocked', { message: 'blocked in API' });
    const events = (await gw.task(t.id)).events.map((e) => e.kind);
    assert.ok(events.includes('blocked'), events.join());
    await drag(page, t.id, 'ready');
    await showCard(page, t.id, 'ready');
    await until(async () => (await gw.task(t.id)).task.status === 'ready', { message: 'ready in API' });
  });

  test('a refused move snaps back and shows the API reason', async () => {
    const t = await gw.createTask({ title: 'Cannot run by hand', assignee: 'coder' });
    await showCard(page, t.id, 'ready');
    await drag(page, t.id, 'running');
    const toast = page.locator('.toast-error', { hasText: t.id });
    await toast.waitFor();
    assert.match(await toast.textContent(), /running/i);
    await showCard(page, t.id, 'ready');
    assert.equal((await gw.task(t.id)).task.status, 'ready');
    // Cancelling a confirmation leaves the card where it was.
    await drag(page, t.id, 'done');
    await dialog(page).locator('button', { hasText: 'Cancel' }).click();
    await showCard(page, t.id, 'ready');
    assert.equal((await gw.task(t.id)).task.status, 'ready');
  });

  test('keyboard: move a card with the move menu', async () => {
    const t = await gw.createTask({ title: 'Keyboard mover', assignee: 'coder' });
    await cardIn(page, 'ready', t.id).focus();
    await page.keyboard.press('m');
    await dialog(page).locator('select[name=to]').selectOption('scheduled');
    await dialog(page).locator('button[type=submit]').click();
    await showCard(page, t.id, 'scheduled');
    await until(async () => (await gw.task(t.id)).task.status === 'scheduled', { message: 'scheduled' });
    // Alt+ArrowLeft from scheduled is todo... the API decides; Enter opens the drawer.
    await cardIn(page, 'scheduled', t.id).focus();
    await page.keyboard.press('Enter');
    await page.locator('#drawer .drawer-title').waitFor();
    assert.equal(await page.locator('#drawer .drawer-title').inputValue(), 'Keyboard mover');
    await page.keyboard.press('Escape');
    await page.locator('#drawer').waitFor({ state: 'hidden' });
  });

  test('drawer: edit the body, comment, add and remove a dependency', async () => {
    const parent = await gw.createTask({ title: 'Parent for deps', assignee: 'coder' });
    const t = await gw.createTask({ title: 'Drawer subject', assignee: 'coder', body: 'old body' });
    await showCard(page, t.id);
    await card(page, t.id).click();
    const drawer = page.locator('#drawer');
    await drawer.locator('.drawer-title').waitFor();
    // Body.
    await drawer.locator('.body-section button', { hasText: 'Edit' }).click();
    await drawer.locator('textarea[name=body]').fill('# New body\n\nWith a [link](https://example.org) and `code`.');
    await drawer.locator('.body-section button', { hasText: 'Save' }).click();
    await drawer.locator('.body-section h1', { hasText: 'New body' }).waitFor();
    assert.match((await gw.task(t.id)).task.body, /^# New body/);
    // Title.
    await drawer.locator('.drawer-title').fill('Drawer subject (renamed)');
    await drawer.locator('.drawer-title').press('Enter');
    await until(async () => (await gw.task(t.id)).task.title === 'Drawer subject (renamed)', { message: 'title saved' });
    await card(page, t.id).filter({ hasText: '(renamed)' }).waitFor();
    // Comment.
    await drawer.locator('textarea[name=comment]').fill('Looks **good** to me');
    await drawer.locator('.comment-form button[type=submit]').click();
    await drawer.locator('.comment-body strong', { hasText: 'good' }).waitFor();
    const comments = (await gw.task(t.id)).comments;
    assert.equal(comments.length, 1);
    assert.equal(comments[0].author, 'dashboard');
    await showCard(page, t.id);
    await card(page, t.id).locator('.chip[title="1 comments"]').waitFor();
    // Dependency: add parent, see the chip, the task drops to todo; remove it.
    await drawer.locator('input[name=add-parent]').fill(parent.id);
    await drawer.locator('input[name=add-parent]').press('Enter');
    await drawer.locator(`.dep-chip[data-id="${parent.id}"][data-role="parent"]`).waitFor();
    assert.deepEqual((await gw.task(t.id)).links.parents, [parent.id]);
    await showCard(page, t.id, 'todo');
    // Screenshot of the open drawer, with its dependency chip.
    await tidy(page);
    await page.screenshot({ path: join(SCREENSHOTS, 'drawer.png') });
    await drawer.locator(`.dep-chip[data-id="${parent.id}"] .chip-x`).click();
    await drawer.locator(`.dep-chip[data-id="${parent.id}"]`).waitFor({ state: 'detached' });
    assert.deepEqual((await gw.task(t.id)).links.parents, []);
    await drawer.locator('.drawer-close').click();
  });

  test('bulk-archive two tasks', async () => {
    const a = await gw.createTask({ title: 'Bulk A' });
    const b = await gw.createTask({ title: 'Bulk B' });
    await showCard(page, a.id);
    await showCard(page, b.id);
    await card(page, a.id).locator('.card-select').check();
    await card(page, b.id).click({ modifiers: ['Control'] });
    await page.locator('#bulk-bar').waitFor();
    assert.equal(await page.locator('#bulk-count').textContent(), '2 selected');
    await page.locator('#bulk-archive').click();
    await submitDialog(page);
    await card(page, a.id).waitFor({ state: 'detached' });
    await card(page, b.id).waitFor({ state: 'detached' });
    assert.equal((await gw.task(a.id)).task.status, 'archived');
    assert.equal((await gw.task(b.id)).task.status, 'archived');
    await page.locator('#bulk-bar').waitFor({ state: 'hidden' });
    // The archived toggle shows them again.
    await page.locator('#toggle-archived').check();
    await showCard(page, a.id, 'archived');
    await page.locator('#toggle-archived').uncheck();
    await column(page, 'archived').waitFor({ state: 'detached' });
  });

  test('filters: search, tenant and assignee', async () => {
    await page.locator('#filter-search').fill('parser');
    await until(async () => (await page.locator('.card').count()) === 1, { message: 'one card for "parser"' });
    await page.locator('#filter-search').fill('');
    await page.locator('#filter-tenant').selectOption('lab');
    await until(async () => (await page.locator('.card').count()) === 1, { message: 'one card for tenant lab' });
    await page.locator('#filter-tenant').selectOption('');
    await page.locator('#filter-assignee').selectOption('writer');
    await until(async () => (await page.locator('.card').count()) === 1, { message: 'one card for writer' });
    await page.locator('#filter-assignee').selectOption('');
  });

  test('a task completed by a worker moves to Done without a reload; other cards are untouched', async () => {
    const t = await gw.createTask({ title: 'Worker finishes this', assignee: 'coder' });
    const other = await gw.createTask({ title: 'Bystander', assignee: 'coder' });
    await showCard(page, t.id, 'ready');
    await showCard(page, other.id, 'ready');
    await page.evaluate(() => { window.__noReload = true; });
    await card(page, other.id).evaluate((el) => { el.__marker = 'same-node'; });
    gw.cli(['claim', t.id]);
    await showCard(page, t.id, 'running');
    // Running is split into lanes by profile.
    await column(page, 'running').locator('.lane-head', { hasText: 'coder' }).waitFor();
    gw.cli(['complete', t.id, '--summary', 'all green']);
    await showCard(page, t.id, 'done');
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
    assert.equal(await card(page, other.id).evaluate((el) => el.__marker), 'same-node', 'an unrelated card was redrawn');
  });

  test('reconnects after a gateway restart and catches up', async () => {
    await gw.stop();
    await page.locator('#live-status[data-state="offline"]').waitFor();
    // Changes made while the gateway is down arrive after it comes back.
    const out = gw.cli(['create', 'Created while offline', '--assignee', 'coder', '--json']);
    const id = JSON.parse(out).id;
    await gw.start();
    await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 15_000 });
    await showCard(page, id, 'ready');
  });

  test('screenshots of the board, wide and narrow', async () => {
    await page.setViewportSize(WIDE);
    await tidy(page);
    await page.screenshot({ path: join(SCREENSHOTS, 'board-wide.png') });
    await page.setViewportSize(NARROW);
    await tidy(page);
    await page.screenshot({ path: join(SCREENSHOTS, 'board-narrow.png') });
    // On a phone the drawer takes the whole screen.
    const first = page.locator('.column[data-status="ready"] .card').first();
    await page.locator('.column[data-status="ready"]').scrollIntoViewIfNeeded();
    await first.click();
    await page.locator('#drawer .drawer-title').waitFor();
    const box = await page.locator('#drawer').boundingBox();
    assert.ok(box.width >= NARROW.width - 1, `drawer width ${box.width}`);
    await page.screenshot({ path: join(SCREENSHOTS, 'drawer-narrow.png') });
    await page.locator('#drawer .drawer-close').click();
    await page.setViewportSize(WIDE);
  });

  test('switch boards and create a new one from the dialog', async () => {
    await page.locator('#new-board').click();
    await submitDialog(page, { slug: 'e2e-second', name: 'Second board' });
    await until(async () => (await page.locator('#board-select').inputValue()) === 'e2e-second', { message: 'switched to e2e-second' });
    await page.locator('body[data-board="e2e-second"]').waitFor();
    await until(async () => (await page.locator('.card').count()) === 0, { message: 'empty new board' });
    const t = await gw.createTask({ title: 'Only on the second board', assignee: 'coder' }, 'e2e-second');
    await showCard(page, t.id, 'ready');
    await page.locator('#board-select').selectOption('default');
    await page.locator('.card', { hasText: 'Write the spec' }).waitFor();
    assert.equal(await card(page, t.id).count(), 0);
    await page.locator('#board-select').selectOption('e2e-second');
    await showCard(page, t.id, 'ready');
    await page.locator('#board-select').selectOption('default');
    await page.locator('.card', { hasText: 'Write the spec' }).waitFor();
  });
});

describe('security', () => {
  test('markdown in body and comments cannot run script', async () => {
    const evil = [
      '<script>window.__xss = "script"</script>',
      '<img src="x" onerror="window.__xss = \'img\'">',
      '[click me](javascript:window.__xss=\'link\')',
      '<a href="javascript:window.__xss=\'a\'">raw link</a>',
      '<svg onload="window.__xss=\'svg\'"></svg>',
      '<iframe src="javascript:parent.__xss=\'iframe\'"></iframe>',
      '<div onmouseover="window.__xss=\'hover\'">hover me</div>',
    ].join('\n\n');
    const t = await gw.createTask({ title: '<script>window.__xss="title"</script><img src=x onerror="window.__xss=1">', body: evil });
    await gw.api('POST', `/tasks/${t.id}/comments`, { body: evil });
    await showCard(page, t.id);
    await card(page, t.id).click();
    const drawer = page.locator('#drawer');
    await drawer.locator('.comment-body').waitFor();
    await drawer.locator('.md', { hasText: 'hover me' }).first().hover();
    const links = drawer.locator('.md a', { hasText: /click me|raw link/ });
    assert.ok(await links.count() >= 2);
    for (let i = 0; i < await links.count(); i++) {
      const href = await links.nth(i).getAttribute('href');
      assert.ok(!href || !/^\s*javascript:/i.test(href), `dangerous href ${href}`);
      await links.nth(i).click({ force: true });
    }
    await page.waitForTimeout(300);
    const report = await page.evaluate(() => ({
      xss: window.__xss,
      scripts: document.querySelectorAll('#drawer script, #board script').length,
      handlers: [...document.querySelectorAll('#drawer *, #board *')]
        .flatMap((el) => [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName}.${a.name}`)),
      jsUrls: [...document.querySelectorAll('#drawer [href], #drawer [src]')]
        .map((el) => el.getAttribute('href') || el.getAttribute('src')).filter((u) => /^\s*javascript:/i.test(u)),
      // (The drawer's own icons are SVG: only markdown output is looked at.)
      frames: document.querySelectorAll('#drawer .md iframe, #drawer .md svg').length,
      title: document.querySelector('#drawer .drawer-title').value,
    }));
    assert.equal(report.xss, undefined, 'a script ran');
    assert.equal(report.scripts, 0);
    assert.deepEqual(report.handlers, []);
    assert.deepEqual(report.jsUrls, []);
    assert.equal(report.frames, 0);
    // The title is shown as text, not markup.
    assert.match(report.title, /<script>/);
    assert.match(await card(page, t.id).locator('.card-title').textContent(), /<script>/);
    // The rest of the markdown still renders.
    await drawer.locator('.body-section .md', { hasText: 'hover me' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'drawer-xss-inert.png') });
    await drawer.locator('.drawer-close').click();
  });
});
