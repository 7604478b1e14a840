// A real three-node Link Loom cluster on 127.0.0.1 for the end-to-end tests.
//
// The tests drive the UI the way an operator would, so they need the real `loom-node` binary (with
// this UI embedded), real Raft between three processes, and the ability to stop and restart the
// node the page talks to. Every wait here is bounded and every process started here is stopped:
// by `close()`, and, should the test runner die first, by the exit hook below.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const REPO = resolve(HERE, '../../..');

/** Every child still running, so a crashed test run does not leave nodes behind. */
const alive = new Set();
process.on('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(130));
}

/** The `loom-node` binary: `$LOOM_NODE_BIN`, else the release build in the Cargo target dir. */
export function nodeBinary() {
  if (process.env.LOOM_NODE_BIN) return process.env.LOOM_NODE_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(REPO, 'target');
  return join(target, 'release', 'loom-node');
}

/** Polls `check` (async, truthy when done) every `everyMs` until `timeoutMs`; throws naming `what`. */
export async function until(what, check, { timeoutMs = 15_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function freePorts(count) {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((ok, fail) => {
          const server = createServer();
          server.once('error', fail);
          server.listen(0, '127.0.0.1', () => ok(server));
        }),
    ),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

async function answers(url, timeoutMs = 1000) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Starts three founding members. `env` reaches every node (e.g. `LOOM_ADMIN_TOKEN`).
 * Resolves once every node answers /readyz (a leader is elected and known everywhere).
 */
export async function startCluster({ env = {}, readyTimeoutMs = 60_000 } = {}) {
  const binary = nodeBinary();
  if (!existsSync(binary)) {
    throw new Error(
      `no loom-node at ${binary}: build it with \`cargo build --release -p linkloom-node\` or set LOOM_NODE_BIN`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'loom-e2e-'));
  const ports = await freePorts(3);
  const peers = ports.map((port, i) => `${i + 1}=127.0.0.1:${port}`).join(',');
  const nodes = ports.map((port, i) => ({
    id: i + 1,
    port,
    url: `http://127.0.0.1:${port}`,
    dataDir: join(dir, `node${i + 1}`),
    logPath: join(dir, `node${i + 1}.log`),
    child: null,
  }));

  const spawnNode = (node) => {
    const log = openSync(node.logPath, 'a');
    const child = spawn(
      binary,
      ['--node-id', `${node.id}`, '--listen', `127.0.0.1:${node.port}`, '--data-dir', node.dataDir, '--peers', peers],
      { env: { ...process.env, LOOM_LOG: 'info,openraft=warn', ...env }, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    child.once('error', () => {}); // reported through `exited` below
    child.once('exit', () => alive.delete(child));
    alive.add(child);
    node.child = child;
  };

  const exited = (node) => node.child === null || node.child.exitCode !== null || node.child.signalCode !== null;

  const logTail = (node, lines = 15) => {
    try {
      return readFileSync(node.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const waitReady = async (which) => {
    await until(
      `node(s) ${which.map((n) => n.id).join(', ')} to answer /readyz`,
      async () => {
        for (const node of which) {
          if (exited(node)) throw new Error(`node ${node.id} exited; its log ends:\n${logTail(node)}`);
        }
        const ready = await Promise.all(which.map((n) => answers(`${n.url}/readyz`)));
        return ready.every(Boolean);
      },
      { timeoutMs: readyTimeoutMs, everyMs: 100 },
    );
  };

  const cluster = {
    dir,
    nodes,
    url: (id) => nodes[id - 1].url,
    logTail: (id) => logTail(nodes[id - 1]),

    /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
    async stop(id, { graceMs = 10_000 } = {}) {
      const node = nodes[id - 1];
      const child = node.child;
      if (!child || exited(node)) return;
      const gone = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
      node.child = null;
    },

    /** Starts a stopped node again on its port and data directory; resolves when it is ready. */
    async restart(id) {
      const node = nodes[id - 1];
      if (!exited(node)) throw new Error(`node ${id} is still running`);
      spawnNode(node);
      await waitReady([node]);
    },

    /** Stops every node; removes data and logs unless `keep` (or `LOOM_E2E_KEEP` is set). */
    async close({ keep = Boolean(process.env.LOOM_E2E_KEEP) } = {}) {
      await Promise.all(nodes.map((n) => cluster.stop(n.id, { graceMs: 5_000 })));
      if (keep) console.log(`e2e: cluster data and logs kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    for (const node of nodes) spawnNode(node);
    await waitReady(nodes);
  } catch (e) {
    await cluster.close({ keep: true });
    throw e;
  }
  return cluster;
}
