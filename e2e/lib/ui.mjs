// Page helpers shared by the tests: find cards and columns, drag with the
// mouse, answer dialogs, wait for API state.
import assert from 'node:assert/strict';

export const card = (page, id) => page.locator(`.card[data-id="${id}"]`);
export const cardIn = (page, status, id) => page.locator(`.column[data-status="${status}"] .card[data-id="${id}"]`);
export const column = (page, status) => page.locator(`.column[data-status="${status}"]`);

/**
 * Wait until task `id` has a card (in `status` when given) and scroll it
 * into view: columns are virtual lists, so a card far down a long column
 * has no element until it is scrolled to.
 */
export async function showCard(page, id, status) {
  const loc = status ? cardIn(page, status, id) : card(page, id);
  await until(async () => {
    await page.evaluate((i) => window.kanban.reveal(i), id);
    return (await loc.count()) > 0;
  }, { timeout: 10_000, message: `card ${id}${status ? ` in ${status}` : ''}` });
  return loc;
}

/** Drag a card onto a column with real pointer events (retried if a live update redraws the card meanwhile). */
export async function drag(page, id, status) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await dragOnce(page, id, status);
    } catch (e) {
      if (attempt >= 3 || !/not attached|not stable|not visible/.test(String(e))) throw e;
    }
  }
}

async function dragOnce(page, id, status) {
  // The column itself, not its list: an empty column is a slim strip with no list in view.
  const target = column(page, status);
  await target.scrollIntoViewIfNeeded();
  await showCard(page, id);
  await card(page, id).scrollIntoViewIfNeeded();
  const from = await card(page, id).boundingBox();
  assert.ok(from, `card ${id} is not visible`);
  const to = await target.boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + 20);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2 + 10, from.y + 30, { steps: 3 });
  await page.mouse.move(to.x + to.width / 2, to.y + 60, { steps: 12 });
  await page.mouse.up();
}

/** The open modal dialog. */
export const dialog = (page) => page.locator('dialog[open]');

export async function submitDialog(page, values = {}) {
  const d = dialog(page);
  await d.waitFor();
  for (const [name, value] of Object.entries(values)) await d.locator(`[name="${name}"]`).fill(value);
  await d.locator('button[type=submit]').click();
  await d.waitFor({ state: 'detached' });
}

/** Poll fn until it returns truthy (API-side assertions). */
export async function until(fn, { timeout = 5000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${message} (last: ${last})`);
}
