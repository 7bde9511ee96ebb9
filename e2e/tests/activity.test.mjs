// The Activity view (charts of the board's history, GET /activity) and
// the drawer's run timeline, in Chromium against a real gateway.
// Run: cd e2e && node --test --test-concurrency=1 tests/activity.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { LAPTOP, SCREENSHOTS, launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { FLOW_BOARD, seedFlowBoard } from '../lib/seed.mjs';
import { seedHistory } from '../lib/history.mjs';
import { until } from '../lib/ui.mjs';

const CHARTS = ['finished', 'queue', 'workers', 'latency', 'failures'];
/** web/activity.js REFRESH_MIN_MS: live refreshes are at most this frequent. */
const REFRESH_MIN_MS = 2000;
const slug = FLOW_BOARD.slug;
let gw;
let browser;
let page;
let ids;
/** Tasks the seed completed: the flow board's and the history's. */
let seededDone;
/** Every GET /activity the page made: {range, at}. */
const activityRequests = [];

before(async () => {
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  await gw.start();
  ids = await seedFlowBoard(gw);
  // A failure besides the blocked task: a reclaimed attempt.
  await gw.api('POST', `/tasks/${ids.running}/reclaim`, { reason: 'moved to another host' }, slug);
  gw.cli(['claim', '--board', slug, ids.running]);
  // The last 50 minutes of work, written at past times (inside the 1 h window).
  const history = seedHistory(gw, slug, { minutes: 50 });
  seededDone = 14 + history.filter((t) => t.status === 'done').length;
  // The open attempts have run a while when the charts are read.
  await new Promise((r) => setTimeout(r, 1100));
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  mkdirSync(SCREENSHOTS, { recursive: true });
  page = await openDashboard(browser.context, gw, { board: slug, viewport: LAPTOP });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/v1/activity') activityRequests.push({ range: u.searchParams.get('range'), at: Date.now() });
  });
});

after(async () => {
  if (page) assert.deepEqual(page.errors, [], 'console errors');
  await browser?.close();
  await gw?.dispose();
});

/** Each chart card's data attributes. */
function charts(p) {
  return p.evaluate(() => Object.fromEntries([...document.querySelectorAll('#activity .chart-card')].map((c) => {
    const canvas = c.querySelector('canvas');
    return [c.dataset.chart, {
      series: Number(c.dataset.series), points: Number(c.dataset.points), total: Number(c.dataset.total),
      canvas: canvas ? { width: canvas.width, height: canvas.height } : null,
      sub: c.querySelector('.chart-sub').textContent,
    }];
  })));
}

const loads = (p) => p.evaluate(() => Number(document.getElementById('activity').dataset.loaded || 0));

async function showActivity() {
  await page.locator('#tab-activity').click();
  await page.locator('#activity .chart-card canvas').first().waitFor();
  await until(async () => (await loads(page)) > 0, { message: 'the activity loaded' });
}

describe('activity view', () => {
  test('the Activity tab renders every chart with data from the seeded board', async () => {
    await showActivity();
    assert.equal(new URL(page.url()).hash, '#activity');
    assert.equal(await page.locator('#board').isHidden(), true);
    assert.equal(await page.locator('#tab-activity').getAttribute('aria-selected'), 'true');
    const c = await charts(page);
    assert.deepEqual(Object.keys(c), CHARTS);
    for (const key of CHARTS) {
      assert.ok(c[key].canvas && c[key].canvas.width > 200 && c[key].canvas.height > 100, `${key} has no canvas: ${JSON.stringify(c[key])}`);
      assert.ok(c[key].series >= 1, `${key} has no series`);
      assert.ok(c[key].points > 0, `${key} shows no data: ${JSON.stringify(c[key])}`);
    }
    assert.equal(c.finished.total, seededDone, 'the done tasks of the seed');
    assert.ok(c.finished.points > 20, `completions spread over the hour: ${c.finished.points} minutes`);
    assert.ok(c.latency.points >= 5, 'waits in several latency bins');
    assert.equal(c.queue.series, 9, 'one series per status');
    assert.equal(c.workers.series, 3, 'demo-dev, demo-qa and demo-writer attempts');
    assert.ok(c.failures.series >= 5, 'blocked, reclaimed, crashed, timed out, rate limited');
    assert.match(c.finished.sub, /per minute/);
    const summary = await page.locator('.activity-summary').textContent();
    assert.match(summary, new RegExp(`${seededDone} finished`));
    await page.screenshot({ path: join(SCREENSHOTS, 'activity.png') });

    // The dark theme redraws the canvases without errors.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(SCREENSHOTS, 'activity-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('a task completed elsewhere shows up live, refreshed at most once per 2 s', async () => {
    const before = (await charts(page)).finished.total;
    const loaded = await loads(page);
    const t0 = Date.now();
    const count = activityRequests.length;
    // A worker completes its task (another process), then a burst of events.
    gw.cli(['complete', '--board', slug, ids.design, '--summary', 'Design agreed']);
    for (let i = 0; i < 4; i++) await gw.createTask({ title: `Burst ${i}`, assignee: 'demo-qa' }, slug);
    await until(async () => (await charts(page)).finished.total === before + 1, { timeout: 10_000, message: 'the finished chart counted the completion' });
    assert.ok(await loads(page) > loaded);
    // Let any refresh the burst scheduled happen, then count.
    await page.waitForTimeout(REFRESH_MIN_MS + 500);
    const made = activityRequests.slice(count).map((r) => r.at);
    assert.ok(made.length >= 1 && made.length <= 3, `${made.length} refreshes for one burst`);
    for (let i = 1; i < made.length; i++) assert.ok(made[i] - made[i - 1] >= REFRESH_MIN_MS - 100, `refreshes ${made[i] - made[i - 1]} ms apart`);
    assert.ok(Date.now() - t0 < 15_000);
    const q = await charts(page);
    assert.ok(q.queue.points > 0);
  });

  test('the range picker switches between 1 h, 24 h and 7 d', async () => {
    for (const [range, per] of [['24h', /per 15 minutes/], ['7d', /per hour/], ['1h', /per minute/]]) {
      const loaded = await loads(page);
      await page.locator(`.range-picker [data-range="${range}"]`).click();
      await until(async () => (await loads(page)) > loaded, { message: `range ${range} loaded` });
      assert.equal(await page.locator('#activity').getAttribute('data-range'), range);
      assert.equal(await page.locator(`.range-picker [data-range="${range}"]`).getAttribute('aria-checked'), 'true');
      assert.equal(activityRequests.at(-1).range, range);
      const c = await charts(page);
      assert.match(c.finished.sub, per);
      assert.equal(c.finished.total, seededDone + 1, `${range}: the seed's and the live one`);
      for (const key of CHARTS) assert.ok(c[key].points > 0, `${range}: ${key} shows no data`);
    }
    // The choice survives a reload, and so does the view.
    await page.locator('.range-picker [data-range="24h"]').click();
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    await until(async () => (await loads(page)) > 0, { message: 'the activity loaded after a reload' });
    assert.equal(await page.locator('#activity').getAttribute('data-range'), '24h');
    await page.locator('.range-picker [data-range="1h"]').click();
  });

  test('switching boards in the Activity view shows the other board', async () => {
    await gw.api('POST', '/boards', { slug: 'quiet', name: 'Quiet board' });
    await gw.createTask({ title: 'Only task' }, 'quiet');
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    await until(async () => (await loads(page)) > 0, { message: 'the activity loaded after a reload' });
    await page.locator('#board-select').selectOption('quiet');
    await until(async () => (await charts(page)).finished.total === 0, { message: 'the quiet board\'s charts' });
    const c = await charts(page);
    assert.equal(c.queue.points > 0, true, 'its one ready task');
    assert.equal(c.latency.total, 0);
    assert.match(await page.locator('.activity-summary').textContent(), /^0 finished/);
    await page.locator('#board-select').selectOption(slug);
    await until(async () => (await charts(page)).finished.total === seededDone + 1, { message: 'back on the flow board' });
  });

  test('the drawer shows one timeline bar per run, coloured by outcome', async () => {
    const t = await gw.createTask({ title: 'Flaky job', assignee: 'demo-dev' }, slug);
    gw.cli(['claim', '--board', slug, t.id]);
    await gw.api('POST', `/tasks/${t.id}/reclaim`, { reason: 'worker lost' }, slug);
    gw.cli(['claim', '--board', slug, t.id]);
    gw.cli(['complete', '--board', slug, t.id, '--summary', 'Second try worked']);
    gw.cli(['claim', '--board', slug, ids.api]);
    const runs = (await gw.task(t.id, slug)).runs;
    assert.equal(runs.length, 2);

    await page.locator('#tab-board').click();
    await page.locator('#board').waitFor();
    assert.equal(new URL(page.url()).hash, '');
    await page.evaluate((id) => window.kanban.reveal(id), t.id);
    await page.locator(`.card[data-id="${t.id}"]`).click();
    const bars = page.locator('#drawer .run-timeline .run-bar');
    await until(async () => (await bars.count()) === 2, { message: 'two bars' });
    const outcomes = await bars.evaluateAll((els) => els.map((e) => e.dataset.outcome));
    assert.deepEqual(outcomes, ['reclaimed', 'completed']);
    const boxes = await bars.evaluateAll((els) => els.map((e) => {
      const r = e.getBoundingClientRect();
      return { left: r.left, width: r.width, color: getComputedStyle(e).backgroundColor, title: e.title };
    }));
    assert.ok(boxes.every((b) => b.width >= 3), 'every bar is visible');
    assert.ok(boxes[1].left >= boxes[0].left, 'the retry starts after the first attempt');
    assert.notEqual(boxes[0].color, boxes[1].color, 'outcomes have their own colours');
    assert.match(boxes[0].title, /reclaimed/);
    await page.locator('#drawer .run-timeline').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOTS, 'drawer-timeline.png') });
    await page.locator('#drawer .drawer-close').click();

    // A running task's open attempt is drawn as running.
    await page.evaluate((id) => window.kanban.reveal(id), ids.api);
    await page.locator(`.card[data-id="${ids.api}"]`).click();
    await page.locator('#drawer .run-timeline .run-bar[data-outcome="running"]').waitFor();
    await page.locator('#drawer .drawer-close').click();
  });
});
