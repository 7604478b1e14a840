// End-to-end: the embedded UI in Debian's chromium (driven by playwright-core) against a real
// three-node cluster with tokens on. One story, in order, the way an operator meets the UI:
// sign in, write a workflow in the editor (a validation error first), trigger it, watch the
// timeline fill in and the logs arrive live, cancel a running execution, retry a failed one, send
// an event and follow it to the execution it started, stop the node the page talks to and see the
// banner come and go. Every page is then photographed at
// desktop and phone width, light and dark, into test-results/ for a person to look at, checked
// for sideways overflow, and audited with axe-core (serious or critical findings fail).
//
// Run: `npm run e2e` (needs a release `loom-node` built with this UI: LOOM_NODE_BIN, else
// $CARGO_TARGET_DIR/release/loom-node; and chromium: LOOM_CHROMIUM, else /usr/bin/chromium).

import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startCluster, until } from './cluster.mjs';

const TOKEN = 'e2e-admin-token-0123456789';
const SHOTS = fileURLToPath(new URL('../test-results/', import.meta.url));
const CHROMIUM = process.env.LOOM_CHROMIUM ?? '/usr/bin/chromium';
/** axe-core, injected into each page for an accessibility audit (contrast, names, roles, focus). */
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** Node 2 serves the page: any node must do, and it need not be the first or the leader. */
const PAGE_NODE = 2;

let cluster;
let browser;
let context;
let page;
/** Scratch directory the shell tasks share (every node runs on this machine). */
let scratch;
const made = {};

async function api(method, path, body, contentType = 'application/yaml') {
  const headers = { authorization: `Bearer ${TOKEN}` };
  // Writes need a JSON or YAML type, even without a body.
  if (body !== undefined) headers['content-type'] = contentType;
  else if (method !== 'GET') headers['content-type'] = 'application/json';
  const response = await fetch(`${cluster.url(1)}${path}`, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

const execution = (id) => api('GET', `/api/v1/executions/${encodeURIComponent(id)}`);

async function shot(name, target = page) {
  // From the top: a full-page shot of a scrolled page draws the sticky header mid-page.
  await target.evaluate(() => window.scrollTo(0, 0));
  await target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** The execution id in the page's URL, once the app has navigated to an execution. */
async function executionIdInUrl() {
  await page.waitForURL(/\/executions\/[^/]+$/, { timeout: 15_000 });
  return decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
}

/** Replaces the editor's whole text (CodeMirror: a contenteditable, so no `fill`). */
async function setEditorText(text) {
  const content = page.locator('.cm-content');
  await content.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/** The execution page's status badge text. */
const headStatus = () => page.locator('.page-head .head-actions').first().innerText();

/** The accessible text of a task's row in the timeline (its name, status and attempts). */
const timelineRow = (task) => page.locator('ul[aria-label="Tasks over time"] li', { hasText: task }).first();

async function triggerFromWorkflowPage(workflowId) {
  await page.goto(`${cluster.url(PAGE_NODE)}/workflows/${workflowId}`);
  await page.getByRole('button', { name: 'Trigger…' }).click();
  await page.getByRole('button', { name: 'Trigger now' }).click();
  return executionIdInUrl();
}

describe('web UI against a three-node cluster', () => {
  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no chromium at ${CHROMIUM}: install Debian's (apt-get install chromium) or set LOOM_CHROMIUM`);
    }
    rmSync(SHOTS, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
    cluster = await startCluster({ env: { LOOM_ADMIN_TOKEN: TOKEN } });
    scratch = join(cluster.dir, 'scratch');
    mkdirSync(scratch);
    // Nodes running as root run shell tasks as `nobody`: let them reach and write here.
    chmodSync(cluster.dir, 0o711);
    chmodSync(scratch, 0o777);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    context = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
    await cluster?.close();
  });

  it('asks for a token, refuses a wrong one, and signs in with a good one', async () => {
    await page.goto(`${cluster.url(PAGE_NODE)}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot('login-desktop');
    await page.getByLabel('API token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The node refused this token').waitFor();
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor({ state: 'detached' });
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  });

  it('shows a validation error at its line first, then creates the workflow', async () => {
    made.report = 'e2e-report';
    const body = (prepareDeps) => `id: ${made.report}
description: Prepares, streams a log, then finishes
tasks:
  - id: prepare
    type: shell
    command: "echo preparing"${prepareDeps}
  - id: stream
    type: shell
    command: 'for i in 1 2 3 4 5 6 7 8 9 10; do seq 1 30; echo line $i; sleep 0.4; done'
    depends_on: [prepare]
  - id: finish
    type: shell
    command: "echo done"
    depends_on: [stream]
`;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Editor' }).click();
    await page.locator('.cm-content').waitFor();
    // prepare -> finish makes a cycle: prepare -> stream -> finish -> prepare.
    await setEditorText(body('\n    depends_on: [finish]'));
    await page.getByRole('button', { name: 'Create workflow' }).click();
    const problem = page.locator('.error-box[role="alert"]');
    await problem.waitFor();
    const text = await problem.innerText();
    assert.match(text, /Not saved/);
    assert.match(text, /cycle/i, text);
    assert.match(text, /prepare/);
    // The problem names a line of the text, and the button goes there.
    assert.match(text, /line \d+/, text);
    await shot('editor-validation-error-desktop');
    await assert.rejects(api('GET', `/api/v1/workflows/${made.report}`), /404/, 'a refused workflow was stored');

    await setEditorText(body(''));
    await page.getByRole('button', { name: 'Create workflow' }).click();
    await page.getByText(`Stored ${made.report} version 1`).waitFor();
    await page.waitForURL(new RegExp(`/editor/${made.report}$`));
    // The live preview drew the three tasks.
    await until('the preview to draw three tasks', async () => (await page.locator('.react-flow__node').count()) === 3);
    await shot('editor-saved-desktop');
    const stored = await api('GET', `/api/v1/workflows/${made.report}`);
    assert.equal(stored.version, 1);
  });

  it('saves an edit as a second version and shows what changed', async () => {
    // The editor holds the stored definition; change one line of it.
    await page.locator('.cm-content').waitFor();
    const text = await page.locator('.cm-content').innerText();
    assert.match(text, /Prepares, streams a log, then finishes/);
    await setEditorText(
      text.replace('Prepares, streams a log, then finishes', 'Prepares, streams ten lines, then finishes'),
    );
    await page.getByRole('button', { name: 'Save new version' }).click();
    await page.getByText(`Stored ${made.report} version 2`).waitFor();

    await page.goto(`${cluster.url(PAGE_NODE)}/workflows/${made.report}`);
    const changes = page.locator('section[aria-labelledby="wf-changes"]');
    await changes.getByText('From v1 to v2').waitFor();
    const removed = changes.locator('tr.diff-removed');
    const added = changes.locator('tr.diff-added');
    assert.equal(await removed.count(), 1);
    assert.equal(await added.count(), 1);
    assert.match(await removed.innerText(), /Prepares, streams a log, then finishes/);
    assert.match(await added.innerText(), /Prepares, streams ten lines, then finishes/);
    await shot('workflow-version-diff-desktop');
  });

  it('reaches a task on the graph with the keyboard alone', async () => {
    await page.goto(`${cluster.url(PAGE_NODE)}/workflows/${made.report}`);
    await page.locator('.dag-node-body').first().waitFor();
    let focused = '';
    for (let i = 0; i < 40 && !focused; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() =>
        document.activeElement?.classList.contains('dag-node-body') ? (document.activeElement.textContent ?? '') : '',
      );
    }
    assert.match(focused, /prepare/, 'Tab never reached the first task of the graph');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /Task prepare/ }).waitFor();
    await page.keyboard.press('Tab');
    await page.keyboard.press(' ');
    await page.getByRole('heading', { name: /Task stream/ }).waitFor();
  });

  it('triggers it, fills in the timeline, and tails the log live', async () => {
    const id = await triggerFromWorkflowPage(made.report);
    made.reportExecution = id;
    await page.getByRole('heading', { name: id }).waitFor();

    // The stream task is running: its log grows while the page is open.
    await until('the stream task to run', async () => /running/.test(await timelineRow('stream').innerText()), {
      timeoutMs: 20_000,
    });
    // Filling in: prepare has its bar, stream's is open, finish has none yet.
    assert.equal(await timelineRow('prepare').locator('.tl-bar').count(), 1);
    assert.equal(await timelineRow('stream').locator('.tl-bar.open').count(), 1);
    assert.equal(await timelineRow('finish').locator('.tl-bar').count(), 0);
    await timelineRow('stream').getByRole('button').click();
    const logs = page.getByTestId('log-text');
    await until('a first log line while the task still runs', async () => /line 1\b/.test(await logs.innerText()));
    const early = await logs.innerText();
    assert.doesNotMatch(early, /line 10\b/, 'the whole log arrived at once: not live');
    const phase = await page.locator('.logs-phase').innerText();
    assert.equal(phase, 'live', `log phase while running: ${phase}`);
    await shot('execution-running-desktop');

    // The pane keeps to the end as lines arrive, unless the reader scrolls up.
    const atEnd = () => logs.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 4);
    await until(
      'line 2, with the pane following it',
      async () => /line 2\b/.test(await logs.innerText()) && (await atEnd()),
    );
    await logs.evaluate((el) => {
      el.scrollTop = 0;
    });
    const jump = page.getByRole('button', { name: 'Jump to latest' });
    await jump.waitFor();
    const before = await logs.innerText();
    await until('more lines while scrolled up', async () => (await logs.innerText()).length > before.length);
    assert.equal(await logs.evaluate((el) => el.scrollTop), 0, 'new lines pulled away a reader who had scrolled up');
    await jump.click();
    await until('the pane back at the end', atEnd);
    await until('the execution to succeed', async () => /succeeded/.test(await headStatus()), { timeoutMs: 30_000 });
    await until('the log to end', async () => (await page.locator('.logs-phase').innerText()) === 'complete');
    const full = await logs.innerText();
    for (let i = 1; i <= 10; i++) assert.match(full, new RegExp(`line ${i}\\b`), `line ${i} missing from\n${full}`);

    // Every task has its bar, in order, and the rows read as succeeded.
    const rows = page.locator('ul[aria-label="Tasks over time"] li');
    assert.equal(await rows.count(), 3);
    for (const [i, task] of ['prepare', 'stream', 'finish'].entries()) {
      const row = rows.nth(i);
      assert.match(await row.innerText(), new RegExp(task));
      assert.match((await row.getByRole('button').getAttribute('title')) ?? '', /succeeded/);
      assert.equal(await row.locator('.tl-bar').count(), 1, `${task} has one attempt bar`);
    }
    await shot('execution-succeeded-desktop');
    const stored = await execution(id);
    assert.equal(stored.status, 'succeeded');
  });

  it('cancels a running execution', async () => {
    made.slow = 'e2e-slow';
    await api(
      'POST',
      '/api/v1/workflows',
      `id: ${made.slow}\ntasks:\n  - id: wait\n    type: shell\n    command: "echo waiting; sleep 120"\n`,
    );
    const id = await triggerFromWorkflowPage(made.slow);
    made.cancelled = id;
    await until('the task to run', async () => /running/.test(await timelineRow('wait').innerText()), {
      timeoutMs: 20_000,
    });
    const logs = page.getByTestId('log-text');
    await until('its first line in the log', async () => /waiting/.test(await logs.innerText()));
    await page.getByRole('button', { name: 'Cancel…' }).click();
    await page.getByRole('button', { name: 'Confirm cancel' }).click();
    await page.getByText('Cancelled.').waitFor();
    await until('the page to show cancelled', async () => /cancelled/.test(await headStatus()));
    // The attempt's status changed under the open log stream: the log is still exactly what the
    // task wrote (the stream once re-sent the log's last bytes when a header changed length).
    await until('the log to end', async () => (await page.locator('.logs-phase').innerText()) === 'complete');
    assert.equal((await logs.innerText()).trim(), '--- wait attempt 1 (running) ---\nwaiting');
    const stored = await execution(id);
    assert.equal(stored.status, 'cancelled');
    await shot('execution-cancelled-desktop');
  });

  it('retries a failed execution from its failed task', async () => {
    made.flaky = 'e2e-flaky';
    const flag = join(scratch, 'flaky-ran-once');
    // Fails on its first run and succeeds after: what a retry-from-failure is for.
    const command = `if [ -e ${flag} ]; then echo second run ok; else touch ${flag}; echo first run fails >&2; exit 3; fi`;
    await api(
      'POST',
      '/api/v1/workflows',
      `id: ${made.flaky}
tasks:
  - id: setup
    type: shell
    command: "echo setup"
  - id: flaky
    type: shell
    command: ${JSON.stringify(command)}
    depends_on: [setup]
    retry: {max_attempts: 1}
`,
    );
    const id = await triggerFromWorkflowPage(made.flaky);
    made.retried = id;
    await until('the execution to fail', async () => /failed/.test(await headStatus()), { timeoutMs: 30_000 });
    const errors = page.locator('section[aria-labelledby="exec-errors"]');
    await errors.waitFor();
    assert.match(await errors.innerText(), /flaky/);
    await shot('execution-failed-desktop');

    await page.getByRole('button', { name: 'Retry failed tasks' }).click();
    await page.getByText('Retrying 1 task.').waitFor();
    await until('the retried execution to succeed', async () => /succeeded/.test(await headStatus()), {
      timeoutMs: 30_000,
    });
    // The retry ran only the failed task again: setup kept its one attempt, flaky has two.
    assert.equal(await timelineRow('setup').locator('.tl-bar').count(), 1);
    assert.equal(await timelineRow('flaky').locator('.tl-bar').count(), 2);
    const stored = await execution(id);
    assert.equal(stored.status, 'succeeded');
    assert.ok(
      stored.audit.some((a) => /retr/.test(a.action)),
      JSON.stringify(stored.audit),
    );
    await shot('execution-retried-desktop');
  });

  it('pauses and resumes a scheduled workflow, showing when it fires next', async () => {
    made.yearly = 'e2e-yearly';
    await api(
      'POST',
      '/api/v1/workflows',
      `id: ${made.yearly}\nschedule: "0 3 1 1 *"\ntimezone: Europe/Kyiv\ntasks:\n  - id: t\n    type: shell\n    command: "true"\n`,
    );
    await page.goto(`${cluster.url(PAGE_NODE)}/workflows/${made.yearly}`);
    const settings = page.locator('section[aria-labelledby="wf-settings"]');
    const nextFire = settings.locator('dt:text-is("Next fire") + dd');
    await until('the next fire time', async () => /\(in \d+ (d|h)\)$/.test(await nextFire.innerText()));
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    await until('no next fire while paused', async () => (await nextFire.innerText()) === 'none while paused');
    assert.equal((await api('GET', `/api/v1/workflows/${made.yearly}`)).paused, true);
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    await until('the next fire time again', async () => /\(in \d+ (d|h)\)$/.test(await nextFire.innerText()));
  });

  it('filters the executions table and keeps the filter in the address', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Executions' }).click();
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    await page.getByLabel('Status').selectOption('cancelled');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/status=cancelled/);
    const rows = page.locator('main table tbody tr');
    await until('only the cancelled execution', async () => {
      const texts = await rows.allInnerTexts();
      return texts.length === 1 && texts[0].includes(made.cancelled);
    });
    await shot('executions-filtered-desktop');
  });

  it('starts a workflow from an event, and lists the event with the execution it started', async () => {
    made.onEvent = 'e2e-on-event';
    await api(
      'POST',
      '/api/v1/workflows',
      `id: ${made.onEvent}
triggers:
  - event: e2e.order
    filter: {region: eu}
tasks:
  - id: t
    type: shell
    command: "echo started by an event"
`,
    );
    const sent = await api(
      'POST',
      '/api/v1/events',
      JSON.stringify({ name: 'e2e.order', id: 'e2e-order-1', payload: { region: 'eu', total: 12 } }),
      'application/json',
    );
    const started = sent.outcomes.find((o) => o.workflow_id === made.onEvent)?.execution_id;
    assert.ok(started, `the event started nothing: ${JSON.stringify(sent)}`);
    made.eventExecution = started;

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Events' }).click();
    await page.getByRole('heading', { name: 'Events' }).waitFor();
    const row = page.locator('main table tbody tr', { hasText: 'e2e-order-1' });
    await row.waitFor();
    await row.getByRole('link', { name: started }).click();
    await page.getByRole('heading', { name: started }).waitFor();
    const event = page.locator('section[aria-labelledby="exec-event"]');
    await event.waitFor();
    assert.match(await event.innerText(), /e2e\.order/);
    assert.match(await event.locator('pre').innerText(), /"total": 12/);

    await page.goto(`${cluster.url(PAGE_NODE)}/workflows/${made.onEvent}`);
    const triggers = page.locator('section[aria-labelledby="wf-triggers"]');
    await until('the workflow to list its event trigger', async () =>
      /event e2e\.order where region = eu/.test(await triggers.innerText()),
    );
  });

  it('shows a banner while the node it talks to is down, and recovers', async () => {
    await page.goto(`${cluster.url(PAGE_NODE)}/`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const banner = page.locator('.banner-bad[role="alert"]');
    assert.equal(await banner.count(), 0);

    await cluster.stop(PAGE_NODE);
    // The page polls /readyz every 5 s: the banner is due within one poll.
    await banner.waitFor({ timeout: 15_000 });
    assert.match(await banner.innerText(), /cannot be reached/);
    await shot('banner-node-down-desktop');
    // The page is still there, not blank.
    await page.getByRole('navigation', { name: 'Main' }).waitFor();

    await cluster.restart(PAGE_NODE);
    await banner.waitFor({ state: 'detached', timeout: 20_000 });
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await until('the dashboard to list the workflows again', async () =>
      (await page.locator('main').innerText()).includes(made.report),
    );
    // The restarted node caught up: the leader's figures, relayed by it, show no lag.
    await until('the dashboard to show every member in step', async () =>
      (await page.locator('main').innerText()).includes('every member in step'),
    );
  });

  it('photographs and audits every page at desktop and phone width, light and dark', async () => {
    const state = await context.storageState();
    const pages = [
      ['dashboard', '/', made.report],
      ['workflow', `/workflows/${made.report}`, 'prepare'],
      ['executions', '/executions', made.report],
      ['execution', `/executions/${made.reportExecution}`, 'finish'],
      ['execution-retried', `/executions/${made.retried}`, 'flaky'],
      ['execution-from-event', `/executions/${made.eventExecution}`, 'Triggering event'],
      ['events', '/events', 'e2e-order-1'],
      ['editor', `/editor/${made.report}`, 'Preview'],
      ['cluster', '/cluster', 'leader'],
      ['settings', '/settings', 'Theme'],
      ['not-found', '/no/such/page', 'not'],
    ];
    const looks = [
      ['desktop', DESKTOP, 'light'],
      ['phone', PHONE, 'light'],
      ['desktop-dark', DESKTOP, 'dark'],
      ['phone-dark', PHONE, 'dark'],
    ];
    const problems = [];
    for (const [look, viewport, colorScheme] of looks) {
      // axe is injected as a script, which the node's CSP (rightly) forbids; the story above ran
      // under the CSP, so a page that needs it to be bypassed would have failed there.
      const ctx = await browser.newContext({ viewport, colorScheme, storageState: state, bypassCSP: true });
      ctx.setDefaultTimeout(15_000);
      const p = await ctx.newPage();
      for (const [name, path, expected] of pages) {
        await p.goto(`${cluster.url(PAGE_NODE)}${path}`);
        await until(`${path} to show ${expected} (${look})`, async () =>
          (await p.locator('main').innerText()).toLowerCase().includes(expected.toLowerCase()),
        );
        await until(`${path} to finish loading (${look})`, async () => (await p.locator('.loading').count()) === 0);
        await shot(`${name}-${look}`, p);
        // Nothing may stick out sideways: a phone would have to scroll the whole page.
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 0) problems.push(`${path} (${look}) is ${overflow}px wider than the window`);
        await p.addScriptTag({ content: AXE });
        const violations = await p.evaluate(async () => {
          const result = await window.axe.run(document, { resultTypes: ['violations'] });
          return result.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({
              ...v,
              // CodeMirror scrolls a box whose content is a contenteditable, which Tab reaches and
              // the arrow keys scroll; axe does not count contenteditable as focusable content.
              nodes: v.nodes.filter(
                (n) => !(v.id === 'scrollable-region-focusable' && n.target.join(' ') === '.cm-scroller'),
              ),
            }))
            .filter((v) => v.nodes.length > 0)
            .map((v) => ({
              id: v.id,
              count: v.nodes.length,
              where: v.nodes[0]?.target.join(' ') ?? '',
              why: v.nodes[0]?.failureSummary?.split('\n').slice(1, 2).join(' ').trim() ?? '',
            }));
        });
        for (const v of violations) problems.push(`${path} (${look}): ${v.id} ×${v.count}, e.g. ${v.where}: ${v.why}`);
      }
      await ctx.close();
    }
    assert.deepEqual(problems, [], 'pages wider than the window or failing the accessibility audit');
  });
});
