// Benchmark (not a test, asserts nothing): the dashboard on a 5,000-task
// board, two builds side by side in one run. One board is seeded once; each
// build's release gateway then serves it in turn, and headless Chromium
// measures, from navigation, the time until the board is drawn and until a
// click on a card has opened the drawer (interactive), plus the page's JS
// heap after a forced GC and what GET /board costs.
//
//   cd e2e && node bench/board_5k.mjs --before ../target/baseline/release/kanban \
//     [--before-name NAME] [--before-unpaged] [--after ../target/release/kanban] [--tasks 5000]
//     [--runs 5] [--from-disk --before-web DIR]
//
// Each gateway serves the dashboard files embedded in its binary (rebuild
// after editing web/). With --from-disk they are answered from disk instead
// (--before-web, e.g. `git archive 3a87cf2 web | tar -x -C DIR` then DIR/web, and web/
// for the current build) through Playwright's request interception, which
// adds its own time to every file.
import { readFile } from 'node:fs/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { Gateway, freePort, REPO } from '../lib/gateway.mjs';
import { launch, WIDE } from '../lib/browser.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const N = Number(arg('tasks', 5000));
const RUNS = Number(arg('runs', 5));
const AFTER = resolve(arg('after', join(REPO, 'target', 'release', 'kanban')));
const BEFORE = arg('before') && resolve(arg('before'));
const BEFORE_WEB = arg('before-web') && resolve(arg('before-web'));
const FROM_DISK = process.argv.includes('--from-disk');
/** What the table calls the `--before` build. */
const BEFORE_NAME = arg('before-name', 'previous build');
/** The `--before` build predates the paged board (3a87cf2 and older): its first GET /board is the whole board. */
const BEFORE_UNPAGED = process.argv.includes('--before-unpaged');
/** Parallel create requests while seeding; bulk moves per request. */
const SEED_CONCURRENCY = 8;
const BULK_CHUNK = 500;
/** The board must not change while it is measured: no dispatching. */
const NO_DISPATCH = { HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' };
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

const since = (t0) => performance.now() - t0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** N tasks, most of them done, some blocked, a few in triage (as board-5000.mjs). */
async function seed(gw) {
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
  const done = ids.filter((_, i) => i % 25 !== 0 && i % 10 < 6);
  const blocked = ids.filter((_, i) => i % 25 !== 0 && i % 10 === 6);
  for (let i = 0; i < done.length; i += BULK_CHUNK) await gw.api('POST', '/tasks/bulk', { ids: done.slice(i, i + BULK_CHUNK), status: 'done' });
  for (let i = 0; i < blocked.length; i += BULK_CHUNK) await gw.api('POST', '/tasks/bulk', { ids: blocked.slice(i, i + BULK_CHUNK), status: 'blocked' });
}

/** Answer the dashboard's files of `origin` from `dir`. */
async function serveWeb(context, origin, dir) {
  await context.route((url) => url.origin === origin && !url.pathname.startsWith('/api/') && url.pathname !== '/healthz',
    async (route) => {
      let path = normalize(decodeURIComponent(new URL(route.request().url()).pathname)).replace(/^\/+/, '');
      if (path === '' || path.endsWith('/')) path += 'index.html';
      try {
        const body = await readFile(join(dir, path));
        await route.fulfill({ status: 200, body, headers: { 'content-type': TYPES[extname(path)] || 'application/octet-stream' } });
      } catch {
        await route.fulfill({ status: 404, body: 'not found' });
      }
    });
}

/** One navigation: board drawn, drawer open, heap, DOM. */
async function measurePage(context, gw) {
  const page = await context.newPage();
  await page.setViewportSize(WIDE);
  const cdp = await context.newCDPSession(page);
  // A running browser, as a user's: its renderer started and its network
  // stack warm, on a page of the gateway that caches none of the dashboard.
  await page.goto(`${gw.url}/healthz`);
  const t0 = performance.now();
  await page.goto(`${gw.url}/`);
  await page.waitForSelector('body[data-ready="1"] .column[data-status="ready"] .card');
  const drawnMs = since(t0);
  // The click and the wait for the drawer run in the page, timed by its
  // clock: the driver's round trips and actionability checks are not the
  // dashboard's time. The driver's view of the same is kept beside it.
  const t1 = performance.now();
  const clickMs = await page.evaluate(() => new Promise((resolve) => {
    const drawer = document.getElementById('drawer');
    const start = performance.now();
    const seen = () => drawer.querySelector('.drawer-title');
    const done = () => { observer.disconnect(); resolve(performance.now() - start); };
    const observer = new MutationObserver(() => { if (seen()) done(); });
    observer.observe(drawer, { childList: true, subtree: true });
    document.querySelector('.column[data-status="ready"] .card').click();
    if (seen()) done();
  }));
  const drawerMs = since(t1);
  const interactiveMs = since(t0);
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = await cdp.send('Runtime.getHeapUsage');
  const dom = await page.evaluate(() => ({ nodes: document.getElementsByTagName('*').length,
    // In the page, from navigation start: the app's mark (new builds), else the board's first card.
    readyMs: performance.getEntriesByName('kanban:board-ready')[0]?.startTime ?? null,
    loaded: window.kanban.state.tasks.size, count: document.getElementById('board-count').textContent }));
  await page.close();
  return { drawnMs, drawerMs, interactiveMs, clickMs, inPageMs: dom.readyMs === null ? null : dom.readyMs + clickMs,
    heapMiB: heap.usedSize / 2 ** 20, ...dom };
}

/** What the build's dashboard asks for first: the whole board, or its first pages. */
async function boardRequest(gw, paged) {
  const t0 = performance.now();
  const res = await fetch(`${gw.url}/api/v1/board${paged ? '?limit=50' : ''}`);
  const bytes = (await res.arrayBuffer()).byteLength;
  return { ms: since(t0), bytes };
}

async function main() {
  const builds = [];
  if (BEFORE) builds.push({ name: `before (${BEFORE_NAME})`, bin: BEFORE, web: BEFORE_WEB, paged: !BEFORE_UNPAGED });
  builds.push({ name: 'after', bin: AFTER, web: join(REPO, 'web'), paged: true });
  for (const b of builds) if (!existsSync(b.bin)) throw new Error(`no binary ${b.bin}`);
  if (FROM_DISK && BEFORE && !(BEFORE_WEB && existsSync(join(BEFORE_WEB, 'index.html')))) {
    throw new Error('--from-disk needs --before-web DIR holding the older build\'s web/ files');
  }

  process.env.KANBAN_GATEWAY_CMD = `${AFTER} gateway run`;
  const seeder = await Gateway.create(NO_DISPATCH);
  writeFileSync(join(seeder.home, 'config.yaml'), 'kanban:\n  dispatch_in_gateway: false\n');
  await seeder.start();
  let t0 = performance.now();
  await seed(seeder);
  console.log(`seeded ${N} tasks in ${(since(t0) / 1000).toFixed(1)} s${process.env.E2E_KEEP_HOME ? ` in ${seeder.home} (kept)` : ''}`);
  await seeder.stop();

  const results = new Map(builds.map((b) => [b.name, []]));
  for (let run = 0; run <= RUNS; run++) {
    for (const b of run % 2 ? builds : [...builds].reverse()) {
      process.env.KANBAN_GATEWAY_CMD = `${b.bin} gateway run`;
      const gw = new Gateway({ home: seeder.home, port: await freePort(), env: NO_DISPATCH });
      await gw.start();
      const browser = await launch();
      try {
        if (FROM_DISK) await serveWeb(browser.context, gw.url, b.web);
        const req = await boardRequest(gw, b.paged);
        const m = await measurePage(browser.context, gw).catch((e) => { throw new Error(`${b.name}: ${e.message}\n${gw.output}`); });
        // Run 0 warms the page cache and the gateway; it is not counted.
        if (run > 0) results.get(b.name).push({ ...m, reqMs: req.ms, reqBytes: req.bytes });
      } finally {
        await browser.close();
        await gw.stop();
      }
    }
  }
  await seeder.dispose();

  console.log(`\n${N}-task board, median of ${RUNS} runs per build (release gateways, headless Chromium ${WIDE.width}x${WIDE.height}, dashboard files ${FROM_DISK ? 'from disk' : 'embedded'}):\n`);
  console.log('In the page (its own clock, from navigation start): board drawn, then a click on the first Ready card answered by the drawer; interactive = the two added.');
  console.log('Seen from the driver (Playwright round trips included): the same two steps and their sum.\n');
  console.log('| build | GET /board the page makes first | board drawn: in page / driver | click → drawer: in page / driver | **interactive, in page** | interactive, driver | JS heap after GC | cards loaded | DOM elements |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const b of builds) {
    const rs = results.get(b.name);
    const m = (k) => (rs.some((r) => r[k] === null) ? NaN : median(rs.map((r) => r[k])));
    console.log(`| ${b.name} | ${m('reqMs').toFixed(0)} ms, ${(m('reqBytes') / 1e6).toFixed(2)} MB | ${m('readyMs').toFixed(0)} / ${m('drawnMs').toFixed(0)} ms | ` +
      `${m('clickMs').toFixed(0)} / ${m('drawerMs').toFixed(0)} ms | **${m('inPageMs').toFixed(0)} ms** | ${m('interactiveMs').toFixed(0)} ms | ` +
      `${m('heapMiB').toFixed(1)} MiB | ${m('loaded')} | ${m('nodes')} |`);
  }
  console.log('\nall runs:', JSON.stringify(Object.fromEntries(results), (k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v)));
}

main().catch((e) => { console.error(e); process.exit(1); });
