// An hour of past work on a board, for the Activity view's tests and
// screenshots: tasks created, picked up after varying waits, run by a few
// profiles, most completed, some crashed and retried, timed out, rate
// limited or blocked. Neither the API nor the CLI can date a change in
// the past, so the rows are written with Python's sqlite3 into the board
// file, as another process (the Python reference) would write them.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const PROFILES = ['demo-dev', 'demo-qa', 'demo-writer'];
const TITLES = [
  'Resize the avatars', 'Fix the login redirect', 'Translate the footer', 'Add a health check',
  'Write the upgrade notes', 'Speed up the search', 'Review the API errors', 'Tidy the CSS',
  'Add retry to the mailer', 'Test the checkout flow', 'Profile the importer', 'Document the config',
];
/** Seconds from ready to claimed, cycled through (the latency histogram's spread). */
const WAITS = [0, 1, 2, 3, 6, 12, 25, 40, 75, 130, 240, 420];

/** A small deterministic generator, so every run draws the same picture. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * The tasks of `minutes` of history ending `now` (unix seconds): each
 * {id, title, assignee, status, created_at, started_at, completed_at,
 * runs: [{profile, started_at, ended_at, outcome}], events: [{kind,
 * payload, at, run}]} with `run` an index into `runs`.
 */
export function historyTasks({ minutes = 60, now = Math.floor(Date.now() / 1000), seed = 7 } = {}) {
  const rand = rng(seed);
  const tasks = [];
  let n = 0;
  for (let m = minutes; m >= 2; m--) {
    const perMinute = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < perMinute; k++) {
      n++;
      const assignee = PROFILES[n % PROFILES.length];
      const created = now - m * 60 + Math.floor(rand() * 50);
      const t = {
        id: `t_h${(0x100000 + n).toString(16)}`, title: TITLES[n % TITLES.length], assignee,
        status: 'ready', created_at: created, started_at: null, completed_at: null, runs: [], events: [],
      };
      t.events.push({ kind: 'created', payload: { assignee, status: 'ready', parents: [] }, at: created });
      let ready = created;
      // A failure first for some tasks, then a retry.
      const fail = n % 11 === 0 ? 'timed_out' : n % 7 === 0 ? 'crashed' : n % 9 === 0 ? 'rate_limited' : null;
      for (let attempt = 0; attempt < (fail ? 2 : 1); attempt++) {
        const start = ready + WAITS[(n + attempt * 5) % WAITS.length];
        const length = 20 + Math.floor(rand() * 260);
        if (start >= now) break;
        const run = t.runs.length;
        t.started_at = start;
        t.events.push({ kind: 'claimed', payload: { lock: `history:${n}`, run_id: null }, at: start, run });
        t.events.push({ kind: 'spawned', payload: { pid: 1000 + n }, at: start, run });
        const end = start + length;
        if (end >= now) {
          t.runs.push({ profile: assignee, started_at: start, ended_at: null, outcome: null });
          t.status = 'running';
          break;
        }
        const outcome = attempt === 0 && fail ? fail : n % 13 === 0 ? 'blocked' : 'completed';
        t.runs.push({ profile: assignee, started_at: start, ended_at: end, outcome });
        if (outcome === 'completed') {
          t.events.push({ kind: 'completed', payload: { result_len: 0, summary: `${t.title}: done` }, at: end, run });
          t.status = 'done';
          t.completed_at = end;
        } else if (outcome === 'blocked') {
          t.events.push({ kind: 'blocked', payload: { reason: 'needs a decision', kind: 'needs_input' }, at: end, run });
          t.status = 'blocked';
        } else {
          t.events.push({ kind: outcome, payload: { error: `${outcome} in attempt ${attempt + 1}` }, at: end, run });
          t.status = 'ready';
          ready = end;
        }
      }
      tasks.push(t);
    }
  }
  return tasks;
}

const WRITE_HISTORY = `
import json, sqlite3, sys
db, tasks = sys.argv[1], json.load(sys.stdin)
c = sqlite3.connect(db, timeout=30)
with c:
    for t in tasks:
        c.execute("INSERT INTO tasks (id, title, assignee, status, priority, created_by, created_at, started_at, completed_at, workspace_kind) VALUES (?, ?, ?, ?, 0, 'history', ?, ?, ?, 'scratch')",
                  (t['id'], t['title'], t['assignee'], t['status'], t['created_at'], t['started_at'], t['completed_at']))
        runs = []
        for r in t['runs']:
            cur = c.execute("INSERT INTO task_runs (task_id, profile, status, started_at, ended_at, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                            (t['id'], r['profile'], 'running' if r['ended_at'] is None else 'done', r['started_at'], r['ended_at'], r['outcome']))
            runs.append(cur.lastrowid)
        for e in t['events']:
            run = runs[e['run']] if e.get('run') is not None else None
            payload = dict(e['payload'])
            if 'run_id' in payload:
                payload['run_id'] = run
            c.execute("INSERT INTO task_events (task_id, run_id, kind, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                      (t['id'], run, e['kind'], json.dumps(payload), e['at']))
        if t['status'] == 'running':
            c.execute("UPDATE tasks SET current_run_id = ?, claim_lock = ? WHERE id = ?", (runs[-1], 'history:1', t['id']))
`;

/** Write `historyTasks(options)` into board `slug` of gateway `gw`; returns the tasks. */
export function seedHistory(gw, slug, options = {}) {
  const tasks = historyTasks(options);
  const db = join(gw.home, 'kanban', 'boards', slug, 'kanban.db');
  const r = spawnSync('python3', ['-c', WRITE_HISTORY, db], { input: JSON.stringify(tasks), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot write the history into ${db}: ${r.stderr}`);
  return tasks;
}
