// Browser end-to-end test of signing in to the Self-Service Portal with the authenticator.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; the binary is $VSC_BIN,
// else $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc) with no SMTP or SMS gateway, so messages
// stay in the local outbox (`vsc admin outbox --json`). A holder is enrolled and a device added
// through the JSON API and registered with the real `vsc authenticator register`. Then Debian's
// Chromium (headless, playwright-core) signs in: the page shows the number, `vsc authenticator
// wait --approve --number N` answers, and the page's script continues by itself (under the page's
// own Content-Security-Policy); the app code from `vsc authenticator code` signs in too; a denial
// shows up on the page without a click.
// Run: node --test e2e/

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const artifacts = path.join(here, 'artifacts');

const MOBILE = '+447700900654';
const PASSCODE = 'abc123';

// --- Child processes: every one is killed at the end, whatever happens ---------------------------

const children = new Set();
function killAll(signal = 'SIGKILL') {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  }
}
process.on('exit', () => killAll());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

function start(cmd, args, { env, log }) {
  const out = fs.openSync(log, 'a');
  const child = spawn(cmd, args, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Run `cmd` to completion, feeding `input` on stdin → {status, stdout, stderr}. */
function run(cmd, args, { env, input = '' }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => {
      children.delete(child);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

// --- Small helpers ---------------------------------------------------------------------------------

function vscBin() {
  const bin =
    process.env.VSC_BIN ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'vsc');
  assert.ok(fs.existsSync(bin), `no vsc binary at ${bin}: build it first with \`cargo build -p vsc-cli\` (or set VSC_BIN)`);
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` until it returns something truthy. */
async function waitFor(what, probe, { timeout = 10_000, every = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeout / 1000} s waiting for ${what}`);
    await sleep(every);
  }
}

// --- The test ----------------------------------------------------------------------------------

const ctx = {};

after(async () => {
  await ctx.browser?.close().catch(() => {});
  await stop(ctx.serve);
  killAll();
  if (ctx.tmp && !ctx.failed) fs.rmSync(ctx.tmp, { recursive: true, force: true });
});

test('a holder signs in with a push approved on the authenticator, or its app code', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  fs.mkdirSync(artifacts, { recursive: true });
  ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsc-e2e-sign-in-push-'));
  const dataDir = path.join(ctx.tmp, 'data');
  const stateDir = path.join(ctx.tmp, 'authenticator');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // A clean environment: no VSC_* or DATABASE_URL from the caller.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('VSC_') && k !== 'DATABASE_URL'),
  );
  const vsc = async (...args) => {
    const r = await run(bin, ['--data-dir', dataDir, ...args], { env });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const authenticator = async (...args) => {
    const r = await run(bin, ['authenticator', ...args, '--state-dir', stateDir], { env });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const api = async (method, url, body, token) => {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${base}${url}`, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  /** The newest outbox message of `kind` to `to` whose body matches `re`. */
  const outbox = (to, kind, re = /./) =>
    waitFor(`a ${kind} message to ${to}`, async () => {
      const lines = (await vsc('admin', 'outbox', '--to', to, '--json')).split('\n').filter(Boolean);
      return lines.map((l) => JSON.parse(l)).reverse().find((m) => m.kind === kind && re.test(m.body));
    });
  const sixDigits = (text) => text.match(/\b(\d{6})\b/)[1];

  try {
    const boot = JSON.parse(await vsc('admin', 'bootstrap', '--org', 'RX1', '--org-name', 'St Elsewhere NHS Trust',
      '--email-domain', 'example.nhs.uk', '--ra-email', 'ra@example.nhs.uk', '--ra-name', 'Rachel Admin', '--json'));
    const email = 'priya.push@example.nhs.uk';
    const user = JSON.parse(await vsc('admin', 'user', 'create', '--org', 'RX1', '--forename', 'Priya', '--surname', 'Push',
      '--email', email, '--mobile', MOBILE, '--json'));

    ctx.serve = start(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
      env: { ...env, VSC_PUBLIC_URL: base },
      log: path.join(ctx.tmp, 'serve.log'),
    });
    await waitFor('vsc serve to be ready', async () => {
      if (ctx.serve.exitCode !== null) assert.fail(`vsc serve exited with ${ctx.serve.exitCode}`);
      try {
        return (await fetch(`${base}/readyz`)).ok;
      } catch {
        return false;
      }
    }, { timeout: 30_000 });

    // A card enrolled and a device added through the JSON API; registered with the CLI.
    const issued = await api('POST', `/api/v1/users/${user.id}/cards`, { type: 'v2', roles: ['R8000'] }, boot.token);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const invitation = await outbox(email, 'invitation');
    const token = invitation.body.match(/\/self-service\/enrol\/([A-Za-z0-9_-]+)/)[1];
    const choose = await api('POST', `/api/v1/enrolment/${token}`, {
      passcode: PASSCODE,
      answers: [{ question: 1, answer: 'Rex' }, { question: 2, answer: 'Leeds' }, { question: 3, answer: 'Blue' }],
    });
    assert.equal(choose.status, 202, JSON.stringify(choose.body));
    const enrolCode = sixDigits((await outbox(MOBILE, 'enrolment_code')).body);
    const enrolled = await api('POST', `/api/v1/enrolment/${token}/verify`, { code: enrolCode });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    const session = enrolled.body.session;
    const added = await api('POST', '/api/v1/self/devices', { name: 'Phone', device_type: 'phone' }, session);
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const deviceCode = sixDigits((await outbox(email, 'device_code')).body);
    const confirmed = await api('POST', `/api/v1/self/devices/${added.body.id}/verify`, { code: deviceCode }, session);
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
    const registered = await run(bin, ['authenticator', 'register', confirmed.body.registration_uri, '--passcode-stdin',
      '--state-dir', stateDir, '--json'], { env, input: `${PASSCODE}\n` });
    assert.equal(registered.status, 0, `${registered.stdout}\n${registered.stderr}`);

    ctx.browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const context = await ctx.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-GB' });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const submit = async (button) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(button)]);
    };
    const step = async (name, fn) => {
      let error;
      await t.test(name, async (st) => {
        try {
          await fn(st);
        } catch (e) {
          error = e;
          throw e;
        }
      });
      if (error) throw error;
    };
    const signIn = async () => {
      await page.goto(`${base}/self-service/sign-in`);
      await page.fill('#email', email);
      await page.fill('#passcode', PASSCODE);
      await submit('button:has-text("Continue")');
      assert.equal(page.url(), `${base}/self-service/sign-in/code`);
      assert.equal((await page.textContent('h1')).trim(), 'Approve on your phone');
    };
    const signOut = async () => {
      await submit('button:has-text("Sign out")');
      assert.equal(page.url(), `${base}/self-service/sign-in`);
    };

    await step('the page shows the number; approving on the phone signs in without a click', async () => {
      await signIn();
      const number = (await page.textContent('#number')).match(/\d+/)[0];
      await page.screenshot({ path: path.join(artifacts, 'sign-in-push.png'), fullPage: true });
      const home = page.waitForURL(`${base}/self-service/`, { timeout: 30_000 });
      const answered = await authenticator('wait', '--approve', '--number', number, '--timeout', '20');
      assert.match(answered, /Self-Service Portal sign-in/);
      assert.match(answered, /state: approved/);
      await home;
      assert.match(await page.textContent('main'), /Priya/);
    });

    await step('the app code typed on the page signs in', async () => {
      await signOut();
      await signIn();
      const { code } = JSON.parse(await authenticator('code', '--json'));
      await page.fill('#code', code);
      await submit('button:has-text("Sign in with the code")');
      assert.equal(page.url(), `${base}/self-service/`);
    });

    await step('a denial on the phone shows on the page, with only "Start again"', async () => {
      await signOut();
      await signIn();
      const denied = page.waitForSelector('text=the sign-in was denied on your phone', { timeout: 30_000 });
      assert.match(await authenticator('wait', '--deny', '--timeout', '20'), /state: denied/);
      await denied;
      assert.equal(await page.locator('#code').count(), 0);
      assert.equal(await page.getAttribute('main a.button', 'href'), '/self-service/sign-in');
      await page.screenshot({ path: path.join(artifacts, 'sign-in-push-denied.png'), fullPage: true });
    });

    await step('no page broke the Content-Security-Policy or logged an error', () => {
      assert.deepEqual(consoleErrors.filter((e) => !/the server responded with a status of 4\d\d/.test(e)), []);
    });
  } catch (e) {
    ctx.failed = true;
    const file = path.join(ctx.tmp, 'serve.log');
    if (fs.existsSync(file)) console.error(`--- serve.log (last 40 lines)\n${fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n')}`);
    console.error(`(files kept in ${ctx.tmp})`);
    throw e;
  }
});
