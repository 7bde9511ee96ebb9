// Refresh the dashboard pictures in docs/screenshots/ on purpose (the
// tests never write there): a real gateway in a throw-away root, the
// demo-like board of lib/seed.mjs, headless Chromium.
//
//   cd e2e && npm run screenshots              # into docs/screenshots/
//   npm run screenshots -- --out /tmp/shots    # anywhere else
//
// Needs the gateway binary (cargo build -p kanban) and /usr/bin/chromium,
// like the tests.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { DOCS_SCREENSHOTS, LAPTOP, NARROW, launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { FLOW_BOARD, seedFlowBoard } from '../lib/seed.mjs';
import { seedHistory } from '../lib/history.mjs';

const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? resolve(process.argv[outArg + 1]) : DOCS_SCREENSHOTS;
mkdirSync(out, { recursive: true });

/** No toasts, no focus ring, every list scrolled to its start. */
async function tidy(page) {
  await page.evaluate(() => {
    document.getElementById('toasts').replaceChildren();
    document.activeElement?.blur?.();
    document.getElementById('board').scrollLeft = 0;
    for (const c of document.querySelectorAll('.col-scroll')) c.scrollTop = 0;
  });
  await page.waitForTimeout(150);
}

async function shoot(page, name) {
  await tidy(page);
  const path = join(out, name);
  await page.screenshot({ path });
  console.log(`wrote ${path}`);
}

const gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
let browser;
try {
  await gw.start();
  const ids = await seedFlowBoard(gw);
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  const page = await openDashboard(browser.context, gw, { board: FLOW_BOARD.slug, viewport: LAPTOP });

  await shoot(page, 'board-wide.png');

  // The drawer of the task being worked on: dependencies, comment, run.
  await page.evaluate((id) => window.kanban.reveal(id), ids.design);
  await page.locator(`.card[data-id="${ids.design}"]`).click();
  await page.locator('#drawer .drawer-title').waitFor();
  await page.locator('#drawer .comment-body').waitFor();
  await shoot(page, 'drawer.png');
  await page.locator('#drawer .drawer-close').click();

  await page.emulateMedia({ colorScheme: 'dark' });
  await shoot(page, 'board-dark.png');
  await page.emulateMedia({ colorScheme: 'light' });

  await page.setViewportSize(NARROW);
  await shoot(page, 'board-narrow.png');
  await page.evaluate((id) => window.kanban.reveal(id), ids.design);
  await page.locator(`.card[data-id="${ids.design}"]`).click();
  await page.locator('#drawer .drawer-title').waitFor();
  await shoot(page, 'drawer-narrow.png');
  await page.locator('#drawer .drawer-close').click();

  // The Activity view over an hour of past work (written after the board
  // pictures, which show the seeded board only).
  seedHistory(gw, FLOW_BOARD.slug, { minutes: 60 });
  await page.setViewportSize(LAPTOP);
  await page.locator('#tab-activity').click();
  await page.waitForFunction(() => Number(document.getElementById('activity').dataset.loaded || 0) > 0
    && !document.getElementById('activity').dataset.loading);
  // Let the live refresh the history's events trigger land (at most one per 2 s).
  await page.waitForTimeout(2500);
  await page.waitForFunction(() => !document.getElementById('activity').dataset.loading);
  await shoot(page, 'activity.png');

  const errors = page.errors.filter((e) => !/WebSocket/.test(e));
  if (errors.length) throw new Error(`console errors: ${errors.join('\n')}`);
} finally {
  await browser?.close();
  await gw.dispose();
}
