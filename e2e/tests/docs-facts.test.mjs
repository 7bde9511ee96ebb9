// What the CLI and the docs tell a new user must match what the code does:
// `kanban init` about when work is picked up, docs/workers.md about how
// many failures block a task (the numbers live in kanban-core's defaults).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway, REPO } from '../lib/gateway.mjs';

const WORDS = { one: 1, two: 2, three: 3, four: 4, five: 5 };

/** A `pub const NAME: T = N;` of crates/kanban-core/src/defaults.rs. */
function coreDefault(name) {
  const src = readFileSync(join(REPO, 'crates', 'kanban-core', 'src', 'defaults.rs'), 'utf8');
  const m = src.match(new RegExp(`pub const ${name}: \\w+ = (\\d+);`));
  assert.ok(m, `${name} not found in kanban-core defaults`);
  return Number(m[1]);
}

let gw;
before(async () => { gw = await Gateway.create(); });
after(async () => { await gw?.dispose(); });

test('kanban init says the gateway picks work up at once (no "ticks every N seconds")', () => {
  const out = gw.cli(['init']);
  assert.match(out, /kanban gateway start/);
  assert.doesNotMatch(out, /ticks every/);
  assert.match(out.replace(/\s+/g, ' '), /picks ready tasks up at once/);
});

test('docs/workers.md gives the default failure limit and violation streak of kanban-core', () => {
  const doc = readFileSync(join(REPO, 'docs', 'workers.md'), 'utf8').replace(/\s+/g, ' ');
  const failures = doc.match(/(\w+) failures in a row block the task \(`kanban\.failure_limit`, default (\d+)/);
  assert.ok(failures, 'docs/workers.md does not state the failure limit');
  assert.equal(WORDS[failures[1]], coreDefault('FAILURE_LIMIT'));
  assert.equal(Number(failures[2]), coreDefault('FAILURE_LIMIT'));
  const violations = doc.match(/(\w+) violations in a row block it/);
  assert.ok(violations, 'docs/workers.md does not state the protocol-violation streak');
  assert.equal(WORDS[violations[1]], coreDefault('PROTOCOL_VIOLATION_STREAK_LIMIT'));
});
