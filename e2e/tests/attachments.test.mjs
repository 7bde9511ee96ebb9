// The drawer's Attachments section in Chromium against a real gateway:
// upload by dropping a file on the drawer (a synthetic drop carrying a
// DataTransfer) and through the file picker, download, delete, and live
// refresh when another process attaches a file.
// Run: cd e2e && node --test --test-concurrency=1 tests/attachments.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { card, showCard, until } from '../lib/ui.mjs';

let gw;
let browser;
let page;
let task;

const row = (name) => page.locator('#drawer .attachment', { hasText: name });
const listed = async () => (await gw.api('GET', `/tasks/${task.id}/attachments`)).attachments;

before(async () => {
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  await gw.start();
  task = await gw.createTask({ title: 'Collect the files', assignee: 'coder' });
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  page = await openDashboard(browser.context, gw);
  await showCard(page, task.id);
  await card(page, task.id).click();
  await page.locator('#drawer .attachments').waitFor();
});

after(async () => {
  if (page) assert.deepEqual(page.errors.filter((e) => !/WebSocket|Failed to load resource/.test(e)), []);
  await browser?.close();
  await gw?.dispose();
});

describe('drawer attachments', () => {
  test('a file dropped on the drawer is uploaded and listed', async () => {
    await page.locator('#drawer .attachments', { hasText: 'No attachments' }).waitFor();
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes\n'], 'dropped.txt', { type: 'text/plain' }));
      const drawer = document.getElementById('drawer');
      for (const type of ['dragenter', 'dragover', 'drop']) {
        drawer.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
      }
    });
    await row('dropped.txt').waitFor();
    assert.match(await row('dropped.txt').textContent(), /14 B · dashboard ·/);
    const atts = await listed();
    assert.equal(atts.length, 1);
    assert.equal(atts[0].filename, 'dropped.txt');
    assert.equal(atts[0].uploaded_by, 'dashboard');
    assert.equal(readFileSync(atts[0].stored_path, 'utf8'), 'dropped bytes\n');
    assert.equal(await page.locator('#drawer.file-drop').count(), 0, 'the drop highlight is cleared');
  });

  test('the file picker uploads too', async () => {
    await page.locator('#drawer input[name="attachment-file"]').setInputFiles({
      name: 'picked.json', mimeType: 'application/json', buffer: Buffer.from('{"picked": true}'),
    });
    await row('picked.json').waitFor();
    assert.deepEqual((await listed()).map((a) => a.filename), ['dropped.txt', 'picked.json']);
  });

  test('a click on the name downloads the exact bytes', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row('picked.json').locator('.attachment-name').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'picked.json');
    assert.equal(readFileSync(await download.path(), 'utf8'), '{"picked": true}');
  });

  test('an attachment made elsewhere appears live', async () => {
    const src = join(gw.home, 'from-cli.md');
    writeFileSync(src, '# from the CLI\n');
    gw.cli(['attach', task.id, src, '--author', 'alice']);
    await row('from-cli.md').waitFor();
    assert.match(await row('from-cli.md').textContent(), /alice/);
  });

  test('delete removes the row, the record and the file', async () => {
    const before = await listed();
    const dropped = before.find((a) => a.filename === 'dropped.txt');
    await row('dropped.txt').locator('.attachment-delete').click();
    await row('dropped.txt').waitFor({ state: 'detached' });
    await until(async () => (await listed()).every((a) => a.filename !== 'dropped.txt'), { message: 'deleted on the server' });
    assert.throws(() => readFileSync(dropped.stored_path));
    assert.match(await page.locator('#drawer .attachments h3').textContent(), /Attachments \(2\)/);
  });
});
