// The board at laptop width: the whole flow (every status, Done included)
// on screen at 1366×768 without sideways scrolling, empty columns as slim
// strips that still take drops, Done folded to its newest cards, and icons
// drawn as SVG (no emoji font needed).
// Run: cd e2e && npm test   (see docs/dashboard.md)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { LAPTOP, NARROW, SCREENSHOTS, launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { FLOW_BOARD, FLOW_DONE, seedFlowBoard, setReview } from '../lib/seed.mjs';
import { column, drag, showCard, until } from '../lib/ui.mjs';

const STATUSES = ['triage', 'todo', 'scheduled', 'ready', 'running', 'blocked', 'review', 'done'];
/** Done cards listed before the rest fold (web/board.js DONE_SHOWN). */
const DONE_SHOWN = 8;
/** Widest a collapsed strip may be. */
const STRIP_MAX_PX = 40;
/** Glyphs that need an emoji or symbol font, and the ones the dashboard used to print as icons. */
const ICON_GLYPHS = /[\p{Extended_Pictographic}\u2190-\u21FF\u25A0-\u25FF\u2700-\u27BF\u00D7]/u;

const slug = FLOW_BOARD.slug;
let gw;
let browser;
let page;
let ids;

before(async () => {
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  await gw.start();
  ids = await seedFlowBoard(gw);
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  mkdirSync(SCREENSHOTS, { recursive: true });
  page = await openDashboard(browser.context, gw, { board: slug, viewport: LAPTOP });
});

after(async () => {
  // The only expected noise: none. (No reconnects or refused moves here.)
  if (page) assert.deepEqual(page.errors, [], 'console errors');
  await browser?.close();
  await gw?.dispose();
});

/** Where every column is, and whether anything scrolls sideways. */
function geometry(p) {
  return p.evaluate(() => {
    const board = document.getElementById('board');
    const cols = {};
    for (const el of board.querySelectorAll('.column')) {
      const r = el.getBoundingClientRect();
      const title = el.querySelector('h2').getBoundingClientRect();
      cols[el.dataset.status] = {
        left: r.left, right: r.right, width: r.width, height: r.height,
        collapsed: el.classList.contains('collapsed'),
        label: el.querySelector('h2').textContent,
        labelShown: title.width > 0 && title.height > 0 && title.left >= r.left - 1 && title.right <= r.right + 1,
      };
    }
    return {
      cols,
      viewport: innerWidth,
      boardScrolls: board.scrollWidth > board.clientWidth,
      pageScrolls: document.documentElement.scrollWidth > innerWidth,
    };
  });
}

function assertWholeFlowVisible(g) {
  assert.deepEqual(Object.keys(g.cols), STATUSES);
  assert.equal(g.boardScrolls, false, 'the board scrolls sideways');
  assert.equal(g.pageScrolls, false, 'the page scrolls sideways');
  for (const [status, c] of Object.entries(g.cols)) {
    assert.ok(c.left >= 0 && c.right <= g.viewport, `${status} is off screen: ${c.left}..${c.right} of ${g.viewport}`);
    assert.ok(c.height > 300, `${status} is ${c.height}px tall`);
    assert.ok(c.labelShown, `${status} shows no label`);
  }
}

describe('layout at 1366×768', () => {
  test('the whole flow is on screen: empty columns are strips, Done shows its newest cards', async () => {
    const g = await geometry(page);
    assertWholeFlowVisible(g);
    // Scheduled and Review are empty on this board: labelled strips.
    for (const s of ['scheduled', 'review']) {
      assert.ok(g.cols[s].collapsed, `${s} is not collapsed`);
      assert.ok(g.cols[s].width <= STRIP_MAX_PX, `${s} strip is ${g.cols[s].width}px wide`);
    }
    for (const s of ['triage', 'todo', 'ready', 'running', 'blocked', 'done']) {
      assert.ok(!g.cols[s].collapsed, `${s} is collapsed`);
      assert.ok(g.cols[s].width >= 140, `${s} is only ${g.cols[s].width}px wide`);
    }
    // Done: cards drawn on screen, newest completion first, the rest behind "N more".
    const done = await page.locator('.column[data-status="done"] .card').first().boundingBox();
    assert.ok(done && done.y + done.height <= LAPTOP.height, 'no Done card on screen');
    const listed = await page.evaluate(() => window.kanban.columnIds('done'));
    assert.equal(listed.length, DONE_SHOWN);
    const completed = await Promise.all(listed.map(async (id) => (await gw.task(id, slug)).task.completed_at));
    assert.deepEqual(completed, [...completed].sort((a, b) => b - a), 'Done is not newest first');
    const fold = column(page, 'done').locator('.fold-toggle');
    assert.equal((await fold.textContent()).trim(), `${FLOW_DONE - DONE_SHOWN} more`);
    const fb = await fold.boundingBox();
    assert.ok(fb && fb.y + fb.height <= LAPTOP.height, 'the "more" control is off screen');
    assert.equal(await column(page, 'done').locator('.col-count').textContent(), String(FLOW_DONE));
    await page.screenshot({ path: join(SCREENSHOTS, 'layout-1366.png') });
  });

  test('"N more" unfolds Done and folds it back; revealing an old card unfolds it', async () => {
    const fold = column(page, 'done').locator('.fold-toggle');
    await fold.click();
    await until(async () => (await page.evaluate(() => window.kanban.columnIds('done'))).length === FLOW_DONE, { message: 'all done cards listed' });
    assert.equal((await fold.textContent()).trim(), 'Show fewer');
    assert.equal(await fold.getAttribute('aria-expanded'), 'true');
    await fold.click();
    await until(async () => (await page.evaluate(() => window.kanban.columnIds('done'))).length === DONE_SHOWN, { message: 'folded again' });
    // The oldest done task is folded away; opening it (search, link, test hook) unfolds.
    const listed = await page.evaluate(() => window.kanban.columnIds('done'));
    const oldest = ids.done.find((id) => !listed.includes(id));
    assert.ok(oldest, 'every done task is listed while folded');
    await showCard(page, oldest, 'done');
    assert.equal((await fold.textContent()).trim(), 'Show fewer');
    await fold.click();
  });

  test('a strip expands and collapses, with the mouse and the keyboard', async () => {
    const review = column(page, 'review');
    await review.locator('.col-toggle').click();
    await until(async () => !(await review.evaluate((el) => el.classList.contains('collapsed'))), { message: 'review expanded' });
    assert.equal(await review.locator('.col-toggle').getAttribute('aria-expanded'), 'true');
    assertWholeFlowVisible(await geometry(page));
    await review.locator('.col-toggle').press('Enter');
    await until(async () => review.evaluate((el) => el.classList.contains('collapsed')), { message: 'review collapsed' });
    assert.equal(await review.locator('.col-toggle').getAttribute('aria-expanded'), 'false');
    // A click anywhere on the strip expands it too.
    const box = await review.boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await until(async () => !(await review.evaluate((el) => el.classList.contains('collapsed'))), { message: 'review expanded by a click' });
    await review.locator('.col-toggle').click();
  });

  test('a strip is a drop target: a card dropped on it moves there and the column opens', async () => {
    const t = await gw.createTask({ title: 'Park me for later', assignee: 'demo-dev' }, slug);
    await showCard(page, t.id, 'ready');
    assert.ok(await column(page, 'scheduled').evaluate((el) => el.classList.contains('collapsed')));
    await drag(page, t.id, 'scheduled');
    await showCard(page, t.id, 'scheduled');
    await until(async () => (await gw.task(t.id, slug)).task.status === 'scheduled', { message: 'scheduled in the API' });
    assert.equal(await column(page, 'scheduled').evaluate((el) => el.classList.contains('collapsed')), false);
    // Moved back, the column is empty again and folds back into a strip.
    await drag(page, t.id, 'ready');
    await showCard(page, t.id, 'ready');
    await until(async () => column(page, 'scheduled').evaluate((el) => el.classList.contains('collapsed')), { message: 'scheduled collapsed again' });
  });

  test('with every column in use, all eight still fit; below 1366 px the board scrolls sideways', async () => {
    const sched = await gw.createTask({ title: 'Renew the TLS certificate', assignee: 'demo-dev' }, slug);
    await gw.api('PATCH', `/tasks/${sched.id}`, { status: 'scheduled' }, slug);
    const rev = await gw.createTask({ title: 'Review the greeting copy', assignee: 'demo-qa' }, slug);
    setReview(gw, slug, rev.id);
    await page.evaluate(() => window.kanban.reload());
    await showCard(page, rev.id, 'review');
    await showCard(page, sched.id, 'scheduled');
    const g = await geometry(page);
    assertWholeFlowVisible(g);
    for (const s of STATUSES) assert.ok(!g.cols[s].collapsed, `${s} is collapsed`);
    await page.screenshot({ path: join(SCREENSHOTS, 'layout-1366-full.png') });
    // With the archived column shown too (nine columns in use).
    await gw.api('PATCH', `/tasks/${ids.done[0]}`, { status: 'archived' }, slug);
    await page.locator('#toggle-archived').check();
    await showCard(page, ids.done[0], 'archived');
    const nine = await geometry(page);
    assert.equal(nine.boardScrolls, false, 'nine columns scroll at 1366 px');
    for (const [status, c] of Object.entries(nine.cols)) {
      assert.ok(!c.collapsed && c.left >= 0 && c.right <= nine.viewport, `${status} is off screen or collapsed`);
    }
    await page.locator('#toggle-archived').uncheck();
    await column(page, 'archived').waitFor({ state: 'detached' });
    // Narrower than a laptop: the columns keep their width and the board scrolls.
    await page.setViewportSize({ width: 1024, height: 768 });
    const narrow = await geometry(page);
    assert.equal(narrow.boardScrolls, true, 'at 1024 px eight full columns should scroll');
    assert.equal(narrow.pageScrolls, false, 'the page itself must not scroll sideways');
    // A phone: one column per screen width, still reachable.
    await page.setViewportSize(NARROW);
    const phone = await geometry(page);
    assert.ok(phone.cols.ready.width >= NARROW.width - 60, `phone column is ${phone.cols.ready.width}px`);
    await page.setViewportSize(LAPTOP);
    assertWholeFlowVisible(await geometry(page));
  });
});

describe('icons', () => {
  test('every icon is inline SVG from the vendored set; no emoji or symbol glyph is printed', async () => {
    // The board's icon is an emoji in its metadata: drawn as an SVG next to the switcher.
    const boardIcon = page.locator('#board-icon svg.icon-clapperboard');
    assert.equal(await boardIcon.count(), 1);
    const bb = await boardIcon.boundingBox();
    assert.ok(bb && bb.width >= 16 && bb.height >= 16, `board icon box ${JSON.stringify(bb)}`);
    // The drawer too (status arrows, close and unlink buttons).
    await showCard(page, ids.design);
    await page.locator(`.card[data-id="${ids.design}"]`).click();
    await page.locator('#drawer .dep-chip').first().waitFor();
    const report = await page.evaluate(async () => {
      const { USED_ICONS, boardIcon } = await import('/icons.js');
      const lucide = (await import('/vendor/lucide-icons.js')).default;
      const icons = [...document.querySelectorAll('.icon')];
      const texts = [];
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) texts.push(walker.currentNode.textContent);
      const probe = (v) => { const el = boardIcon(v, 'x'); return el.tagName === 'svg' ? el.getAttribute('class') : `text:${el.textContent}`; };
      return {
        missing: [...USED_ICONS].filter((n) => !lucide[n]),
        notSvg: icons.filter((el) => el.tagName !== 'svg' || !el.querySelector('path, circle, rect, line, polyline')).length,
        emptyBoxes: icons.filter((el) => el.getClientRects().length && el.getBoundingClientRect().width === 0).length,
        count: icons.length,
        text: texts.join(' '),
        options: [...document.querySelectorAll('#board-select option')].map((o) => o.textContent),
        placeholders: [...document.querySelectorAll('[placeholder]')].map((el) => el.getAttribute('placeholder')),
        css: [...document.styleSheets].flatMap((s) => [...s.cssRules]).map((r) => r.cssText).filter((t) => /content:\s*"[^"]+"/.test(t)),
        probes: {
          rocket: probe('🚀'), selector: probe('⚙️'), name: probe('rocket'), letter: probe('q'), unknown: probe('🦄'), none: probe(''),
        },
      };
    });
    assert.deepEqual(report.missing, [], 'icons used but not vendored');
    assert.ok(report.count >= 20, `only ${report.count} icons drawn`);
    assert.equal(report.notSvg, 0);
    assert.equal(report.emptyBoxes, 0);
    assert.doesNotMatch(report.text, ICON_GLYPHS);
    for (const o of report.options) assert.doesNotMatch(o, ICON_GLYPHS);
    for (const p of report.placeholders) assert.doesNotMatch(p, ICON_GLYPHS);
    assert.deepEqual(report.css, [], 'CSS generated content (glyphs) found');
    assert.match(report.probes.rocket, /icon-rocket/);
    assert.match(report.probes.selector, /icon-settings/);
    assert.match(report.probes.name, /icon-rocket/);
    assert.equal(report.probes.letter, 'text:Q');
    assert.match(report.probes.unknown, /icon-kanban/);
    assert.match(report.probes.none, /icon-kanban/);
    await page.screenshot({ path: join(SCREENSHOTS, 'layout-drawer.png') });
    await page.locator('#drawer .drawer-close').click();
  });
});
