// Debian's Chromium driven by playwright-core (no downloaded browser).
// The page is loaded from the gateway's own origin; unless E2E_EMBEDDED=1,
// static files are answered from web/ on disk, so the tests exercise the
// current sources even before the gateway embeds them. API and WebSocket
// traffic always goes to the real gateway.
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './gateway.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** The dashboard's files (E2E_WEB_DIR: test another copy, e.g. an older one). */
export const WEB_DIR = process.env.E2E_WEB_DIR || join(REPO, 'web');
/** Where the tests write their screenshots (never a tracked directory). */
export const SCREENSHOTS = process.env.E2E_SCREENSHOTS_DIR || join(REPO, 'target', 'e2e-screenshots');
/** The pictures in docs/, refreshed on purpose by `npm run screenshots`. */
export const DOCS_SCREENSHOTS = join(REPO, 'docs', 'screenshots');
export const WIDE = { width: 1440, height: 900 };
/** The smallest common laptop screen: the whole flow must fit without scrolling. */
export const LAPTOP = { width: 1366, height: 768 };
export const NARROW = { width: 390, height: 844 };

const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
// A page answered by route.fulfill() (web/ from disk) has no IP address, so
// Chromium's Local Network Access checks treat it as public and block its
// WebSocket to the loopback gateway. Only needed when serving from disk.
const FROM_DISK_FLAGS = ['--disable-features=LocalNetworkAccessChecks'];

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
};

/** A browser with a fresh profile directory (removed by close()). */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'kanban-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: process.env.E2E_EMBEDDED === '1' ? CHROMIUM_FLAGS : [...CHROMIUM_FLAGS, ...FROM_DISK_FLAGS],
    viewport: WIDE,
    colorScheme: process.env.E2E_COLOR_SCHEME || 'light',
    reducedMotion: 'reduce',
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Serve web/ from disk for every non-API path of `origin`. */
export async function serveWebFromDisk(context, origin) {
  if (process.env.E2E_EMBEDDED === '1') return;
  await context.route((url) => url.origin === origin && !url.pathname.startsWith('/api/')
    && url.pathname !== '/healthz' && url.pathname !== '/metrics', async (route) => {
    const url = new URL(route.request().url());
    let path = normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, '');
    if (path === '' || path.endsWith('/')) path += 'index.html';
    if (path.startsWith('..')) return route.fulfill({ status: 404, body: 'not found' });
    try {
      const body = await readFile(join(WEB_DIR, path));
      await route.fulfill({ status: 200, body, headers: { 'content-type': TYPES[extname(path)] || 'application/octet-stream' } });
    } catch {
      await route.fulfill({ status: 404, body: 'not found' });
    }
  });
}

/** Open the dashboard on `board` and wait until it has loaded and gone live. */
export async function openDashboard(context, gw, { board, viewport } = {}) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.errors = errors;
  if (viewport) await page.setViewportSize(viewport);
  if (board) {
    // Once per tab, so a later switch in the UI survives reloads.
    await page.addInitScript((b) => {
      if (!sessionStorage.getItem('e2e-board-set')) {
        sessionStorage.setItem('e2e-board-set', '1');
        localStorage.setItem('kanban.board', b);
      }
    }, board);
  }
  await page.goto(`${gw.url}/`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('#live-status[data-state="live"]');
  return page;
}
