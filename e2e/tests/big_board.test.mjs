// End-to-end: a big column arrives one page at a time. 600 ready tasks,
// the page size set to 20 through the address (`?page_size=20`): only the
// first page is loaded and drawn, scrolling the column fetches the next
// pages, a live change to a card that was never fetched still moves the
// counts, the drawer opens for a card fetched on scroll, and a search finds
// a card that was never fetched (the server filters).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway } from '../lib/gateway.mjs';
import { launch, serveWebFromDisk, WIDE } from '../lib/browser.mjs';
import { card, cardIn, column, until } from '../lib/ui.mjs';

/** Tasks in the one big column, and cards per page the dashboard is told to fetch. */
const TASKS = 600;
const PAGE = 20;
const SEED_CONCURRENCY = 8;
const title = (i) => `Big-${String(i).padStart(4, '0')} task`;

let gw;
let browser;
let page;
/** Task ids in creation order (= display order: same priority, oldest first). */
let ids = [];
/** The off-page card the live-change test blocks. */
let off;

const ready = () => column(page, 'ready');
const count = async (status) => Number(await column(page, status).locator('.col-count').textContent());
const loadedIds = () => page.evaluate(() => window.kanban.columnIds('ready'));

before(async () => {
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  await gw.start();
  ids = new Array(TASKS);
  let next = 0;
  // Oldest first: create in order, a few in flight (created_at has second resolution;
  // ties in one second are ordered by id, which the test reads back from the server).
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, async () => {
    while (next < TASKS) {
      const i = next++;
      ids[i] = (await gw.createTask({ title: title(i), body: `body ${i}` })).id;
    }
  }));
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  page = await browser.context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.setViewportSize(WIDE);
  await page.goto(`${gw.url}/?page_size=${PAGE}`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('#live-status[data-state="live"]');
});

after(async () => {
  if (page) assert.deepEqual(page.errors, []);
  await browser?.close();
  await gw?.dispose();
});

describe('big board', () => {
  test('only the first page is loaded and drawn; the count is the server total', async () => {
    assert.equal((await loadedIds()).length, PAGE);
    assert.equal(await page.evaluate(() => window.kanban.state.tasks.size), PAGE);
    assert.equal(await count('ready'), TASKS);
    assert.equal(await page.locator('#board-count').textContent(), `${TASKS} tasks`);
    assert.ok(await ready().locator('.card').count() <= PAGE);
    assert.equal(typeof await page.evaluate(() => window.kanban.state.pages.get('ready')?.next), 'string', 'a cursor for more');
  });

  test('scrolling the column to its end fetches the next pages', async () => {
    const before = (await loadedIds()).length;
    await until(async () => {
      await ready().locator('.col-scroll').evaluate((sc) => { sc.scrollTop = sc.scrollHeight; });
      return (await loadedIds()).length >= before + 2 * PAGE;
    }, { timeout: 15_000, message: 'two more pages after scrolling' });
    const loaded = await loadedIds();
    assert.equal(new Set(loaded).size, loaded.length, 'no card twice');
    assert.ok(loaded.length < TASKS, 'not the whole column');
    assert.equal(await count('ready'), TASKS);
  });

  test('the drawer opens for a card fetched on scroll', async () => {
    const loaded = await loadedIds();
    const id = loaded[loaded.length - 1];
    assert.ok(loaded.indexOf(id) >= PAGE, 'a card of a later page');
    await until(async () => {
      await page.evaluate((i) => window.kanban.reveal(i), id);
      return (await card(page, id).count()) > 0;
    }, { timeout: 10_000, message: `card ${id}` });
    await card(page, id).click();
    const t = await gw.task(id);
    await until(async () => (await page.locator('#drawer .drawer-title').inputValue()) === t.task.title,
      { timeout: 10_000, message: `drawer of ${id}` });
    await page.locator('#drawer .drawer-close').click();
  });

  test('a live change to a card never fetched updates the counts', async () => {
    const loaded = new Set(await loadedIds());
    off = ids.filter((id) => !loaded.has(id)).pop();
    assert.ok(off, 'an off-page card');
    // Another process (like a worker) blocks it.
    gw.cli(['block', off, 'waiting for the big test']);
    await until(async () => (await count('ready')) === TASKS - 1 && (await count('blocked')) === 1,
      { timeout: 10_000, message: 'ready 599, blocked 1' });
    await cardIn(page, 'blocked', off).waitFor();
    assert.equal(await page.locator('#board-count').textContent(), `${TASKS} tasks`);
  });

  test('a search finds a card that was never fetched', async () => {
    const loaded = new Set(await loadedIds());
    const i = ids.findLastIndex((id, k) => !loaded.has(id) && id !== off && k < TASKS - 5);
    assert.ok(i > 0);
    await page.locator('#filter-search').fill(title(i).split(' ')[0]);
    await cardIn(page, 'ready', ids[i]).waitFor();
    await until(async () => (await ready().locator('.card').count()) === 1 && (await count('ready')) === 1,
      { timeout: 10_000, message: 'one card matches' });
    await page.locator('#filter-search').fill('');
    await until(async () => (await count('ready')) === TASKS - 1, { timeout: 10_000, message: 'all back' });
    assert.equal((await loadedIds()).length, PAGE, 'the first page again');
  });
});
