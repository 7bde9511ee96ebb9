// Start a real gateway in a throw-away HERMES_HOME on a free loopback port,
// and run the kanban CLI against the same root (a second process, like a
// worker or another operator would).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const KANBAN_BIN = process.env.KANBAN_BIN || join(REPO, 'target', 'debug', 'kanban');
/** How long a gateway may take to answer /healthz after start. */
const START_TIMEOUT_MS = 20_000;

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** The command that runs a gateway: KANBAN_GATEWAY_CMD (gets `--port N` appended), else `kanban gateway run`. */
export function gatewayCommand(port) {
  if (process.env.KANBAN_GATEWAY_CMD) {
    const parts = process.env.KANBAN_GATEWAY_CMD.split(/\s+/).filter(Boolean);
    return [parts[0], [...parts.slice(1), '--port', String(port)]];
  }
  if (existsSync(KANBAN_BIN)) {
    const probe = spawnSync(KANBAN_BIN, ['gateway', 'run', '--help'], { encoding: 'utf8' });
    if (probe.status === 0) return [KANBAN_BIN, ['gateway', 'run', '--port', String(port)]];
  }
  throw new Error(`no gateway: build the kanban binary (${KANBAN_BIN}) with its \`gateway run\` verb`);
}

export class Gateway {
  constructor({ home, port, env = {} }) {
    this.home = home;
    this.port = port;
    this.env = env;
    this.url = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.output = '';
  }

  /** A fresh root and port; `await gw.start()` next. */
  static async create(env = {}) {
    const home = mkdtempSync(join(tmpdir(), 'kanban-e2e-'));
    return new Gateway({ home, port: await freePort(), env });
  }

  get childEnv() {
    return {
      ...process.env,
      HERMES_HOME: this.home,
      HERMES_KANBAN_HOME: this.home,
      HOME: this.home,
      RUST_LOG: process.env.RUST_LOG || 'warn',
      ...this.env,
    };
  }

  async start() {
    const [cmd, args] = gatewayCommand(this.port);
    this.command = [cmd, ...args].join(' ');
    this.proc = spawn(cmd, args, { env: this.childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b) => { this.output = (this.output + b.toString()).slice(-20_000); };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    const exited = new Promise((res) => this.proc.once('exit', (code) => res(code)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
      if (code !== undefined) throw new Error(`gateway exited (${code}): ${this.output}`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return this;
      } catch { /* not up yet */ }
    }
    throw new Error(`gateway did not answer within ${START_TIMEOUT_MS} ms: ${this.output}`);
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const done = new Promise((res) => p.once('exit', res));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
    this.proc = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async dispose() {
    await this.stop();
    if (!process.env.E2E_KEEP_HOME) rmSync(this.home, { recursive: true, force: true });
  }

  /** Call the REST API (JSON in, JSON out; throws on HTTP errors). */
  async api(method, path, body, board) {
    const u = new URL(`/api/v1${path}`, this.url);
    if (board) u.searchParams.set('board', board);
    const res = await fetch(u, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return data;
  }

  createTask(fields, board) {
    return this.api('POST', '/tasks', fields, board).then((r) => r.task);
  }

  task(id, board) {
    return this.api('GET', `/tasks/${id}`, undefined, board);
  }

  /** Run the kanban CLI on this root (another process, like a worker). */
  cli(args) {
    const r = spawnSync(KANBAN_BIN, args, { env: this.childEnv, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kanban ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }
}
