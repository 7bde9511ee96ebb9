// A board that looks like the demo's after it has run a while: a few
// profiles, a dependency graph, work in most stages of the flow (Scheduled
// and Review empty, so their columns collapse), a blocked task waiting for
// a human, and a long Done column. Used by the layout tests
// and by `npm run screenshots`, so the pictures in docs/ show what the
// tests check.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Done tasks seeded: more than the Done column shows before folding. */
export const FLOW_DONE = 14;
/** Slug, name and icon (an emoji: the dashboard must draw it as SVG) of the board. */
export const FLOW_BOARD = { slug: 'flow', name: 'Greeting service', icon: '🎬' };

const DONE_TITLES = [
  'Set up the repository', 'Choose the web framework', 'Write the style guide', 'Add the CI pipeline',
  'Configure the linter', 'Sketch the landing page', 'Pick the database', 'Draft the API schema',
  'Write the health check', 'Add request logging', 'Create the Docker image', 'Set up staging',
  'Add the greeting model', 'Document the release process', 'Add rate limiting', 'Write the changelog',
];

/**
 * Seed `board` (created when missing) on the gateway `gw`.
 * Returns the ids worth pointing at: {design, api, web, blocked, review, running, done}.
 */
export async function seedFlowBoard(gw, { slug, name, icon } = FLOW_BOARD) {
  await gw.api('POST', '/boards', { slug, name, icon, description: 'Seeded like the demo board' });
  const create = (fields) => gw.createTask(fields, slug);
  const cli = (args) => gw.cli([args[0], '--board', slug, ...args.slice(1)]);
  const patch = (id, body) => gw.api('PATCH', `/tasks/${id}`, body, slug);

  // The history: finished work, oldest first (Done lists newest first).
  const done = [];
  for (let i = 0; i < FLOW_DONE; i++) {
    const t = await create({ title: DONE_TITLES[i % DONE_TITLES.length], assignee: i % 3 ? 'demo-dev' : 'demo-qa', tenant: 'acme' });
    cli(['claim', t.id]);
    cli(['complete', t.id, '--summary', `Finished: ${t.title.toLowerCase()}`]);
    done.push(t.id);
  }

  // The graph in flight: design runs, two implementations wait on it, a test waits on both.
  const design = await create({ title: 'Design the greeting service', assignee: 'demo-dev', tenant: 'acme', priority: 2,
    body: '## Goal\nA service that greets **by name**.\n\n- [x] outline the API\n- [ ] agree on the page layout' });
  const api = await create({ title: 'Implement the greeting API', assignee: 'demo-dev', tenant: 'acme', parents: [design.id],
    body: 'Waits in `todo` until the design is done.' });
  const web = await create({ title: 'Implement the greeting page', assignee: 'demo-dev', tenant: 'acme', parents: [design.id] });
  await create({ title: 'Test the service end to end', assignee: 'demo-qa', parents: [api.id, web.id] });
  cli(['claim', design.id]);
  cli(['heartbeat', design.id, '--note', 'outline written, drafting the page layout']);
  await gw.api('POST', `/tasks/${design.id}/comments`, { body: 'Keep the greeting under **80** characters.' }, slug);

  // More running work, on another profile.
  const docs = await create({ title: 'Write the user guide', assignee: 'demo-writer' });
  cli(['claim', docs.id]);
  const notes = await create({ title: 'Draft the release notes', assignee: 'demo-writer', priority: 1 });
  cli(['claim', notes.id]);

  // Ready: assigned work waiting for a worker, and one nobody will pick up.
  await create({ title: 'Add a German greeting', assignee: 'demo-dev', priority: 1 });
  await create({ title: 'Benchmark the greeting endpoint', assignee: 'demo-qa', tenant: 'lab', priority: -1 });
  await create({ title: 'Translate the landing page' });

  // A rough idea, and a task waiting for a human.
  await create({ title: 'Idea: greet in the visitor\'s language', triage: true });
  const blocked = await create({ title: 'Deploy to production', assignee: 'demo-dev', priority: 3 });
  await patch(blocked.id, { status: 'blocked', block_reason: 'needs the production API key from ops' });

  return { design: design.id, api: api.id, web: web.id, blocked: blocked.id, running: docs.id, done };
}

/**
 * Put task `id` of board `slug` in review. Hermes 0.19.0 has no verb or API
 * move into review (its dashboard writes the row directly), so neither do
 * we: write the row with Python's sqlite3, as another process would.
 */
export function setReview(gw, slug, id) {
  const db = join(gw.home, 'kanban', 'boards', slug, 'kanban.db');
  const r = spawnSync('python3', ['-c',
    'import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=30); '
    + 'n = c.execute("UPDATE tasks SET status = \'review\' WHERE id = ?", (sys.argv[2],)).rowcount; c.commit(); sys.exit(n != 1)',
    db, id], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot set ${id} to review in ${db}: ${r.stderr}`);
}
