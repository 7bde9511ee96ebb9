// The toolbar's Orchestration pill and settings dialog, in Chromium
// against a real gateway whose auxiliary model is a fake chat-completions
// server on loopback (started here): the pill shows and flips
// kanban.auto_decompose in config.yaml, the dialog picks the orchestrator
// profile, edits a profile's description and has the model write one; a
// failing model is reported and changes nothing.
// Run: cd e2e && node --test --test-concurrency=1 tests/orchestration.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { dialog, until } from '../lib/ui.mjs';

let gw;
let browser;
let page;
let model;
/** The fake model's next answer: [status, content]. */
let answer = [200, 'Reviews pull requests for correctness.'];
const requests = [];

function startModel() {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      requests.push(JSON.parse(body || 'null'));
      const [status, content] = answer;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(status === 200
        ? JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content } }] })
        : JSON.stringify({ error: { message: content } }));
    });
  });
  return new Promise((res) => srv.listen(0, '127.0.0.1', () => res(srv)));
}

const configText = () => readFileSync(join(gw.home, 'config.yaml'), 'utf8');

before(async () => {
  model = await startModel();
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  // A Hermes profile (a directory): its description is editable.
  mkdirSync(join(gw.home, 'profiles', 'reviewer'), { recursive: true });
  writeFileSync(join(gw.home, 'profiles', 'reviewer', 'SOUL.md'), 'You review code.\n');
  writeFileSync(join(gw.home, 'config.yaml'), [
    'auxiliary:',
    '  default:',
    `    base_url: http://127.0.0.1:${model.address().port}/v1`,
    '    model: fake-small',
    'kanban:',
    '  auto_decompose: false',
    '  profiles:',
    '    lead: {command: [/bin/true], description: Plans the work}',
    '    coder: {command: [/bin/true], description: Writes the code}',
    '',
  ].join('\n'));
  await gw.start();
  browser = await launch();
  await serveWebFromDisk(browser.context, gw.url);
  page = await openDashboard(browser.context, gw);
});

after(async () => {
  if (page) assert.deepEqual(page.errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
  await browser?.close();
  await gw?.dispose();
  model?.close();
});

const pill = () => page.locator('#orchestration-pill');
const row = (name) => page.locator(`#orchestration-dialog li[data-profile="${name}"]`);

describe('orchestration pill and dialog', () => {
  test('the pill shows the mode and flips auto_decompose in config.yaml', async () => {
    await until(async () => (await pill().getAttribute('data-mode')) === 'manual', { message: 'pill loaded' });
    assert.match(await pill().textContent(), /Manual/);
    await pill().click();
    await until(async () => (await pill().getAttribute('data-mode')) === 'auto', { message: 'pill flipped' });
    assert.equal((await gw.api('GET', '/orchestration')).auto_decompose, true);
    assert.match(configText(), /auto_decompose: true/);
    await pill().click();
    await until(async () => (await gw.api('GET', '/orchestration')).auto_decompose === false,
      { message: 'flipped back' });
    // The pill re-renders once the PUT's answer is in, after the config.
    await until(async () => /Manual/.test(await pill().textContent()), { message: 'pill says Manual' });
  });

  test('the dialog picks the orchestrator profile and lists the profiles', async () => {
    await page.locator('#orchestration-settings').click();
    await dialog(page).waitFor();
    for (const name of ['lead', 'coder', 'reviewer']) await row(name).waitFor();
    // Template descriptions live in config.yaml: shown, not editable.
    assert.equal(await row('coder').locator('textarea').inputValue(), 'Writes the code');
    assert.equal(await row('coder').locator('textarea').isDisabled(), true);
    await page.locator('#orch-orchestrator_profile').selectOption('lead');
    await until(async () => (await gw.api('GET', '/orchestration')).orchestrator_profile === 'lead',
      { message: 'orchestrator saved' });
    assert.match(configText(), /orchestrator_profile: lead/);
    await page.locator('#orch-auto_promote_children').uncheck();
    await until(async () => (await gw.api('GET', '/orchestration')).auto_promote_children === false,
      { message: 'auto-promote saved' });
  });

  test('a description is edited and saved, then written by the model', async () => {
    const text = row('reviewer').locator('textarea');
    await text.fill('Checks the work');
    await row('reviewer').locator('button.orch-save').click();
    await until(async () => {
      const p = (await gw.api('GET', '/profiles')).profiles.find((x) => x.name === 'reviewer');
      return p.description === 'Checks the work' && !p.description_auto;
    }, { message: 'description saved' });

    const before = requests.length;
    await row('reviewer').locator('button.orch-describe').click();
    await until(async () => {
      const p = (await gw.api('GET', '/profiles')).profiles.find((x) => x.name === 'reviewer');
      return p.description === 'Reviews pull requests for correctness.' && p.description_auto;
    }, { message: 'description written by the model' });
    assert.equal(requests.length, before + 1);
    assert.match(JSON.stringify(requests.at(-1).messages), /You review code/);
    await until(async () => (await row('reviewer').locator('textarea').inputValue())
      === 'Reviews pull requests for correctness.', { message: 'dialog shows it' });
    await row('reviewer').locator('.orch-tag', { hasText: 'auto' }).waitFor();
  });

  test('a failing model is reported and the description is kept', async () => {
    answer = [500, 'model exploded'];
    await row('reviewer').locator('button.orch-describe').click();
    await page.locator('.toast-error', { hasText: 'Describe failed' }).waitFor();
    const p = (await gw.api('GET', '/profiles')).profiles.find((x) => x.name === 'reviewer');
    assert.equal(p.description, 'Reviews pull requests for correctness.');
    assert.equal(await row('reviewer').locator('button.orch-describe').isDisabled(), false);
    await dialog(page).locator('button', { hasText: 'Close' }).click();
    await until(async () => (await page.locator('#orchestration-dialog').count()) === 0,
      { message: 'dialog closed' });
  });
});
