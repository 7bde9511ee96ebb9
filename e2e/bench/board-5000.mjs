// Benchmark: a board with 5,000 tasks in headless Chromium against a real
// gateway. Measures (does not assert) the time until the board is drawn
// and answers input. Run: cd e2e && npm run bench  [-- --tasks N]
import { Gateway } from '../lib/gateway.mjs';
import { launch, openDashboard, serveWebFromDisk, WIDE } from '../lib/browser.mjs';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--tasks') + 1]) || 5000;
/** Parallel create requests while seeding. */
const SEED_CONCURRENCY = 8;
const BULK_CHUNK = 500;

const ms = (t0) => Math.round(performance.now() - t0);

async function seed(gw) {
  const t0 = performance.now();
  const ids = new Array(N);
  let next = 0;
  const profiles = ['coder', 'writer', 'perf', 'planner', 'reviewer'];
  const tenants = ['acme', 'lab', null];
  const worker = async () => {
    while (next < N) {
      const i = next++;
      const t = await gw.createTask({
        title: `Task ${i}: ${['refactor', 'document', 'benchmark', 'fix', 'review'][i % 5]} module ${i % 97}`,
        body: `Body of task ${i}\n\n- item\n- item`,
        assignee: profiles[i % profiles.length],
        tenant: tenants[i % tenants.length] || undefined,
        priority: i % 7 - 3,
        triage: i % 25 === 0,
      });
      ids[i] = t.id;
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  // Most of a long-lived board is done.
  const done = ids.filter((_, i) => i % 25 !== 0 && i % 10 < 6);
  const blocked = ids.filter((_, i) => i % 25 !== 0 && i % 10 === 6);
  for (let i = 0; i < done.length; i += BULK_CHUNK) await gw.api('POST', '/tasks/bulk', { ids: done.slice(i, i + BULK_CHUNK), status: 'done' });
  for (let i = 0; i < blocked.length; i += BULK_CHUNK) await gw.api('POST', '/tasks/bulk', { ids: blocked.slice(i, i + BULK_CHUNK), status: 'blocked' });
  return { seconds: ms(t0) / 1000, done: done.length, blocked: blocked.length };
}

async function main() {
  const gw = await Gateway.create();
  await gw.start();
  const browser = await launch();
  try {
    const seeded = await seed(gw);
    console.log(`seeded ${N} tasks in ${seeded.seconds.toFixed(1)} s (${seeded.done} done, ${seeded.blocked} blocked)`);

    let t0 = performance.now();
    const res = await fetch(`${gw.url}/api/v1/board`);
    const bytes = (await res.arrayBuffer()).byteLength;
    const apiBoardMs = ms(t0);

    await serveWebFromDisk(browser.context, gw.url);
    // Warm the browser (module cache, first-run costs) on a throw-away page.
    const warm = await openDashboard(browser.context, gw, { viewport: WIDE });
    await warm.close();

    t0 = performance.now();
    const page = await openDashboard(browser.context, gw, { viewport: WIDE });
    const loadMs = ms(t0); // navigation → board drawn and live feed open
    const nav = await page.evaluate(() => {
      const e = performance.getEntriesByType('navigation')[0];
      return { domContentLoaded: Math.round(e.domContentLoadedEventEnd), cards: document.querySelectorAll('.card').length,
        tasks: window.kanban.state.tasks.size, domNodes: document.getElementsByTagName('*').length };
    });

    // Interactive: open a drawer, filter, scroll the Done column to the end.
    t0 = performance.now();
    await page.locator('.column[data-status="ready"] .card').first().click();
    await page.locator('#drawer .drawer-title').waitFor();
    const drawerMs = ms(t0);
    await page.locator('#drawer .drawer-close').click();

    t0 = performance.now();
    await page.locator('#filter-search').fill('Task 4242:');
    await page.waitForFunction(() => document.querySelectorAll('.card').length === 1);
    const filterMs = ms(t0);
    await page.locator('#filter-search').fill('');
    // Done lists its newest cards only until "N more" unfolds the rest.
    await page.locator('.column[data-status="done"] .fold-toggle').click();
    await page.waitForFunction(() => document.querySelectorAll('.column[data-status="done"] .card').length > 10);

    const scroll = await page.evaluate(async () => {
      const sc = document.querySelector('.column[data-status="done"] .col-scroll');
      const start = performance.now();
      let frames = 0;
      let worst = 0;
      let last = start;
      for (let y = 0; y <= sc.scrollHeight; y += sc.clientHeight) {
        sc.scrollTop = y;
        await new Promise(requestAnimationFrame);
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
        frames++;
      }
      return { frames, totalMs: Math.round(performance.now() - start), worstFrameMs: Math.round(worst),
        cardsInDom: document.querySelectorAll('.column[data-status="done"] .card').length };
    });

    const interactiveMs = loadMs + drawerMs;
    const result = {
      tasks: N, api_board_ms: apiBoardMs, api_board_bytes: bytes, page_load_to_board_ms: loadMs,
      dom_content_loaded_ms: nav.domContentLoaded, cards_in_dom: nav.cards, dom_nodes: nav.domNodes,
      open_drawer_ms: drawerMs, search_filter_ms: filterMs, load_plus_first_click_ms: interactiveMs,
      done_column_scroll: scroll,
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(`\n| tasks | GET /board | page → board drawn | first drawer open | search | cards in DOM |\n|---|---|---|---|---|---|\n` +
      `| ${N} | ${apiBoardMs} ms (${(bytes / 1e6).toFixed(1)} MB) | ${loadMs} ms | ${drawerMs} ms | ${filterMs} ms | ${nav.cards} |`);
  } finally {
    await browser.close();
    await gw.dispose();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
