// Specify / Decompose on a triage card, in Chromium against a real gateway
// whose auxiliary model is a fake chat-completions server on loopback
// (started here): the card leaves triage with the model's spec, or fans
// out into routed children; a hostile answer is refused with its reason
// and the card stays in triage, unchanged.
// Run: cd e2e && node --test --test-concurrency=1 tests/triage.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway } from '../lib/gateway.mjs';
import { launch, openDashboard, serveWebFromDisk } from '../lib/browser.mjs';
import { card, showCard, until } from '../lib/ui.mjs';

let gw;
let browser;
let page;
let model;
/** The next answers of the fake model (the last one repeats). */
let answers = [];
const requests = [];

/** A minimal OpenAI-compatible chat-completions server on a free loopback port. */
function startModel() {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      requests.push({ url: req.url, body: JSON.parse(body || 'null') });
      const content = answers.length > 1 ? answers.shift() : answers[0];
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content } }] }));
    });
  });
  return new Promise((res) => srv.listen(0, '127.0.0.1', () => res(srv)));
}

before(async () => {
  model = await startModel();
  gw = await Gateway.create({ HERMES_KANBAN_DISPATCH_IN_GATEWAY: '0' });
  writeFileSync(join(gw.home, 'config.yaml'), [
    'auxiliary:',
    '  default:',
    `    base_url: http://127.0.0.1:${model.address().port}/v1`,
    '    model: fake-small',
    'kanban:',
    '  auto_decompose: false',
    '  orchestrator_profile: lead',
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

async function openDrawer(id) {
  await showCard(page, id, 'triage');
  await card(page, id).click();
  await page.locator('#drawer .drawer-title').waitFor();
}

describe('triage buttons', () => {
  test('Specify rewrites the card and moves it out of triage', async () => {
    const t = await gw.createTask({ title: 'login thing??', triage: true });
    answers = [JSON.stringify({ title: 'Add a login page', body: '**Goal** users can sign in' })];
    await openDrawer(t.id);
    await page.locator('#drawer button[data-triage="specify"]').click();
    await until(async () => (await gw.task(t.id)).task.status !== 'triage', { message: 'specified' });
    const shown = await gw.task(t.id);
    assert.equal(shown.task.title, 'Add a login page');
    await until(async () => (await page.locator('#drawer .drawer-title').inputValue()) === 'Add a login page',
      { message: 'drawer shows the new title' });
    // Off triage, the buttons are gone.
    assert.equal(await page.locator('#drawer button[data-triage]').count(), 0);
    assert.match(requests.at(-1).body.messages[1].content, /login thing\?\?/);
  });

  test('Decompose fans the card out into routed children', async () => {
    const t = await gw.createTask({ title: 'Build feature X', triage: true });
    answers = [JSON.stringify({ fanout: true, tasks: [
      { title: 'Write the code for X', assignee: 'coder', parents: [] },
      { title: 'Plan the rollout of X', assignee: 'lead', parents: [0] }] })];
    await openDrawer(t.id);
    await page.locator('#drawer button[data-triage="decompose"]').click();
    const shown = await until(async () => {
      const d = await gw.task(t.id);
      return d.task.status === 'todo' && d;
    }, { message: 'decomposed' });
    assert.equal(shown.links.parents.length, 2);
    assert.equal(shown.task.assignee, 'lead');
    await page.locator('.card', { hasText: 'Write the code for X' }).first().waitFor();
  });

  test('a hostile answer is refused with its reason and changes nothing', async () => {
    const t = await gw.createTask({ title: 'Cyclic idea', triage: true });
    answers = [JSON.stringify({ fanout: true, tasks: [
      { title: 'a', parents: [1] }, { title: 'b', parents: [0] }] })];
    const before = await gw.task(t.id);
    await openDrawer(t.id);
    await page.locator('#drawer button[data-triage="decompose"]').click();
    await page.locator('.toast-error', { hasText: 'cycle' }).waitFor();
    const now = await gw.task(t.id);
    assert.equal(now.task.status, 'triage');
    assert.deepEqual(now.events, before.events);
    // The buttons are usable again.
    assert.equal(await page.locator('#drawer button[data-triage="specify"]').isDisabled(), false);
  });
});
