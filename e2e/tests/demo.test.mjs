// The demo board at laptop width (issue 13 item 12 and its acceptance
// line): `kanban gateway run --demo` keeps work flowing through the board,
// and at 1366×768 every column's header stays on screen while several
// columns hold cards and Done keeps growing.
// Run: cargo build -p kanban && cd e2e && node --test tests/demo.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway, KANBAN_BIN } from '../lib/gateway.mjs';
import { LAPTOP, SCREENSHOTS, launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { until } from '../lib/ui.mjs';

const STATUSES = ['triage', 'todo', 'scheduled', 'ready', 'running', 'blocked', 'review', 'done'];
/** Fast enough to see the board move within the test, seeded to replay. */
const DEMO_FLAGS = ['--demo', '--demo-rate', '500ms', '--demo-seed', '7'];
/** Columns that must hold cards at once (review has no way in from the demo). */
const BUSY_COLUMNS = 6;
/** Generous: workers take 1-6 s and the machine may be loaded. */
const MOVE_TIMEOUT_MS = 60_000;

let gw;
let browser;
let page;

before(async () => {
  gw = await Gateway.create();
  // The demo runs on the gateway's own root, so gw.api and gw.home apply.
  const base = process.env.KANBAN_GATEWAY_CMD || `${KANBAN_BIN} gateway run`;
  process.env.KANBAN_GATEWAY_CMD = [base, ...DEMO_FLAGS, '--demo-root', gw.home].join(' ');
  await gw.start();
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  mkdirSync(SCREENSHOTS, { recursive: true });
  page = await openDashboard(browser.context, gw, { board: 'demo', viewport: LAPTOP });
});

after(async () => {
  if (page) assert.deepEqual(page.errors, [], 'console errors');
  await browser?.close();
  await gw?.dispose();
});

/** Each column's box and header box, and whether anything scrolls sideways. */
function geometry(p) {
  return p.evaluate(() => {
    const board = document.getElementById('board');
    const cols = {};
    for (const el of board.querySelectorAll('.column')) {
      const r = el.getBoundingClientRect();
      const h = el.querySelector('h2').getBoundingClientRect();
      cols[el.dataset.status] = {
        left: r.left, right: r.right,
        head: { left: h.left, right: h.right, top: h.top, bottom: h.bottom, width: h.width, height: h.height },
      };
    }
    return {
      cols,
      width: innerWidth,
      height: innerHeight,
      boardScrolls: board.scrollWidth > board.clientWidth,
      pageScrolls: document.documentElement.scrollWidth > innerWidth,
    };
  });
}

function assertEveryHeaderOnScreen(g) {
  assert.deepEqual(Object.keys(g.cols), STATUSES);
  assert.equal(g.boardScrolls, false, 'the board scrolls sideways');
  assert.equal(g.pageScrolls, false, 'the page scrolls sideways');
  for (const [status, c] of Object.entries(g.cols)) {
    assert.ok(c.left >= 0 && c.right <= g.width, `${status} column is off screen: ${c.left}..${c.right} of ${g.width}`);
    const h = c.head;
    assert.ok(h.width > 0 && h.height > 0, `${status} header is not drawn`);
    assert.ok(h.left >= 0 && h.right <= g.width && h.top >= 0 && h.bottom <= g.height,
      `${status} header is off screen: ${JSON.stringify(h)}`);
  }
}

/** Card ids per column, as the board lists them. */
function cardsByColumn(p) {
  return p.evaluate((statuses) => Object.fromEntries(statuses.map((s) => [s, window.kanban.columnIds(s)])), STATUSES);
}

const busy = (cards) => STATUSES.filter((s) => cards[s].length > 0);

describe('the demo board at 1366×768', () => {
  test('every column header is on screen from the first load', async () => {
    assertEveryHeaderOnScreen(await geometry(page));
    // The opening already uses the columns a task can reach before work starts.
    const cards = await cardsByColumn(page);
    for (const s of ['triage', 'todo', 'scheduled', 'ready', 'blocked', 'done']) {
      assert.ok(cards[s].length > 0, `${s} is empty on the first load: ${JSON.stringify(cards)}`);
    }
  });

  test('several columns hold cards at once, and every header stays on screen', async () => {
    const cards = await until(async () => {
      const c = await cardsByColumn(page);
      return busy(c).length >= BUSY_COLUMNS && c.running.length > 0 ? c : null;
    }, { timeout: MOVE_TIMEOUT_MS, interval: 250, message: `${BUSY_COLUMNS} busy columns, running included` });
    assertEveryHeaderOnScreen(await geometry(page));
    await page.screenshot({ path: join(SCREENSHOTS, 'demo-1366.png') });
    assert.ok(busy(cards).length >= BUSY_COLUMNS, JSON.stringify(cards));
  });

  test('the board keeps moving: new tasks arrive and Done grows', async () => {
    const before = await cardsByColumn(page);
    const seen = new Set(STATUSES.flatMap((s) => before[s]));
    const doneCount = async () => Number(await page.locator('.column[data-status="done"] .col-count').textContent());
    const doneBefore = await doneCount();
    await until(async () => {
      const now = await cardsByColumn(page);
      return STATUSES.some((s) => now[s].some((id) => !seen.has(id)));
    }, { timeout: MOVE_TIMEOUT_MS, interval: 250, message: 'a new card' });
    await until(async () => (await doneCount()) > doneBefore,
      { timeout: MOVE_TIMEOUT_MS, interval: 250, message: `Done to grow past ${doneBefore}` });
    assertEveryHeaderOnScreen(await geometry(page));
  });
});
