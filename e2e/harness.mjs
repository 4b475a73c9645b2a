// What the browser end-to-end tests share: child processes (killed at the end, whatever happens),
// the real `vsc serve`, a real SMTP server (Python's aiosmtpd, Debian package python3-aiosmtpd,
// writing a maildir) and its mail, an HTTP SMS gateway receiver, Debian's Chromium (headless,
// playwright-core), named steps, and enrolment of a holder through the JSON API.
//
// The vsc binary is built beforehand (`cargo build -p vsc-cli`): $VSC_BIN, else
// $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc. Each test file keeps only its scenario.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..');
/** Screenshots go here (e2e/artifacts). */
export const artifacts = path.join(here, 'artifacts');

// --- Child processes: every one is killed at the end, whatever happens ---------------------------

const children = new Set();
export function killAll(signal = 'SIGKILL') {
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

/** Start a long-running `cmd`, its output appended to `log`. */
export function start(cmd, args, { env, log }) {
  const out = fs.openSync(log, 'a');
  const child = spawn(cmd, args, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. */
export async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Run `cmd` to completion, feeding `input` on stdin → {status, stdout, stderr}. */
export function run(cmd, args, { env, input = '' }) {
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

export function vscBin() {
  const bin =
    process.env.VSC_BIN ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'vsc');
  assert.ok(fs.existsSync(bin), `no vsc binary at ${bin}: build it first with \`cargo build -p vsc-cli\` (or set VSC_BIN)`);
  return bin;
}

/**
 * A Python 3 that can import aiosmtpd (and the `also` modules): $PYTHON, the one on PATH, else
 * Debian's /usr/bin/python3.
 */
export function pythonWithAiosmtpd(...also) {
  const imports = ['aiosmtpd', ...also].join(', ');
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', `import ${imports}`], { stdio: 'ignore' }).status === 0) return py;
  }
  assert.fail('the SMTP server needs the Python module aiosmtpd: apt-get install -y python3-aiosmtpd');
}

/** Whether `port` can be listened on now. */
function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A free port below Linux's ephemeral range (32768–60999), so that between this check and the
 * server's bind no outgoing connection of a parallel test (browser, HTTP client) takes it as its
 * source port — a port the kernel handed out from that range could be.
 */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port between 20000 and 32000');
}

export function portOpen(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` until it returns something truthy. */
export async function waitFor(what, probe, { timeout = 10_000, every = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeout / 1000} s waiting for ${what}`);
    await sleep(every);
  }
}

/** The first six-digit number in `text`. */
export function sixDigits(text) {
  const m = text.match(/\b(\d{6})\b/);
  assert.ok(m, `no code in ${text}`);
  return m[1];
}

// --- Reading mail from the maildir ------------------------------------------------------------

export function decodeQuotedPrintable(text) {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Headers (lower-case names, unfolded) and body of one MIME entity. */
export function splitEntity(raw) {
  const m = raw.match(/\r?\n\r?\n/);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return { headers, body };
}

export function decodeBody({ headers, body }) {
  const cte = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(body);
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

/** The text/plain part of a message (searching nested multiparts), or null. */
export function plainText(raw) {
  const entity = splitEntity(raw);
  const type = entity.headers['content-type'] || 'text/plain';
  if (/^multipart\//i.test(type)) {
    const boundary = type.match(/boundary="?([^";]+)"?/i);
    if (!boundary) return null;
    for (const part of entity.body.split(`--${boundary[1]}`).slice(1)) {
      if (part.startsWith('--')) break;
      const text = plainText(part.replace(/^\r?\n/, ''));
      if (text !== null) return text;
    }
    return null;
  }
  return /^text\/plain/i.test(type) ? decodeBody(entity) : null;
}

/** Every delivered message: {to, subject, text}, oldest first. */
export function mailbox(maildir) {
  const dir = path.join(maildir, 'new');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((f) => ({ f, at: fs.statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => a.at - b.at || a.f.localeCompare(b.f))
    .map(({ f }) => {
      const raw = fs.readFileSync(path.join(dir, f), 'utf8');
      const { headers } = splitEntity(raw);
      return { to: headers['to'] || '', subject: headers['subject'] || '', text: plainText(raw) || '' };
    });
}

/** The `n`-th (0-based) message to `email` whose text matches `re`, once delivered. */
export async function nthMail(maildir, email, re, n, what) {
  return waitFor(what, () => {
    const mine = mailbox(maildir).filter((m) => m.to.toLowerCase().includes(email.toLowerCase()) && re.test(m.text));
    return mine.length > n && mine[n];
  });
}

/** The enrolment link (`base`/self-service/enrol/…) of the newest invitation to `email`. */
export async function invitationLink(maildir, email, base) {
  const linkRe = new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/self-service/enrol/[A-Za-z0-9_-]+`);
  return waitFor(`the invitation email to ${email}`, () => {
    const mine = mailbox(maildir).filter((m) => m.to.toLowerCase().includes(email.toLowerCase()));
    const found = mine.map((m) => m.text.match(linkRe)).filter(Boolean).pop();
    return found && found[0];
  });
}

// --- The SMS gateway ---------------------------------------------------------------------------

/** An HTTP receiver of `POST /sms` {to, body}: `received` holds {to, body, auth}, oldest first. */
export function smsGateway() {
  const received = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/sms') {
        res.writeHead(404).end();
        return;
      }
      try {
        const { to, body } = JSON.parse(data);
        received.push({ to, body, auth: req.headers.authorization });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"queued"}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  return { server, received };
}

/**
 * The code in the first SMS received after the first `after` ones; with `to` and `auth`, the
 * SMS must have gone to that number with that Authorization header.
 */
export async function nextSmsCode(received, after, expect = {}) {
  const sms = await waitFor('an SMS with a code', () => received.length > after && received[received.length - 1]);
  if ('to' in expect) assert.equal(sms.to, expect.to);
  if ('auth' in expect) assert.equal(sms.auth, expect.auth);
  return sixDigits(sms.body);
}

// --- The stack: a scratch directory, mail, `vsc serve`, the CLI and the JSON API ---------------

/**
 * The shared state of one test file, torn down after its tests: the browser closed, `vsc serve`
 * and the SMTP server stopped, the SMS gateway closed, every child killed, and the scratch
 * directory removed unless the test failed.
 */
export function testContext() {
  const ctx = {};
  after(async () => {
    await ctx.browser?.close().catch(() => {});
    await stop(ctx.serve);
    await stop(ctx.smtp);
    await new Promise((r) => (ctx.sms ? ctx.sms.server.close(r) : r()));
    killAll();
    if (ctx.tmp && !ctx.failed) fs.rmSync(ctx.tmp, { recursive: true, force: true });
  });
  return ctx;
}

/**
 * A scratch directory `ctx.tmp` (named `prefix`…) with the data directory in it, a free port for
 * `vsc serve` and its base URL, and a clean environment: no VSC_* or DATABASE_URL from the caller.
 */
export async function workspace(ctx, prefix) {
  fs.mkdirSync(artifacts, { recursive: true });
  ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const port = await freePort();
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('VSC_') && k !== 'DATABASE_URL'),
  );
  return { tmp: ctx.tmp, dataDir: path.join(ctx.tmp, 'data'), port, base: `http://127.0.0.1:${port}`, env };
}

/**
 * The SMTP server (writing `ctx.tmp`/maildir, logging to smtp.log) and the SMS gateway
 * (`ctx.sms`), both ready; `serveEnv` points `vsc serve` at them.
 */
export async function startMail(ctx, python, env) {
  const maildir = path.join(ctx.tmp, 'maildir');
  const [smtpPort, smsPort] = [await freePort(), await freePort()];
  ctx.smtp = start(python, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${smtpPort}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], {
    env,
    log: path.join(ctx.tmp, 'smtp.log'),
  });
  await waitFor('the SMTP server', () => portOpen(smtpPort));
  ctx.sms = smsGateway();
  await new Promise((r) => ctx.sms.server.listen(smsPort, '127.0.0.1', r));
  return {
    maildir,
    serveEnv: { VSC_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, VSC_SMS_URL: `http://127.0.0.1:${smsPort}/sms` },
  };
}

/** `vsc serve` on the workspace's port and data directory (log: serve.log), once ready. */
export async function startServe(ctx, bin, { port, dataDir, base, env }, extraEnv = {}) {
  ctx.serve = start(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: { ...env, ...extraEnv, VSC_PUBLIC_URL: base },
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
}

/** The operator CLI on the workspace's data directory: `await vsc(...args)` → stdout, exit 0. */
export function vscCli(bin, { dataDir, env }) {
  return async (...args) => {
    const r = await run(bin, ['--data-dir', dataDir, ...args], { env });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
}

/** The organisation RX1 with its RA manager, from the operator CLI → {token, …}. */
export async function bootstrapOrg(vsc) {
  return JSON.parse(await vsc('admin', 'bootstrap', '--org', 'RX1', '--org-name', 'St Elsewhere NHS Trust',
    '--email-domain', 'example.nhs.uk', '--ra-email', 'ra@example.nhs.uk', '--ra-name', 'Rachel Admin', '--json'));
}

/** A holder in RX1, from the operator CLI → {id, …}. */
export async function createUser(vsc, { forename, surname, email, mobile }) {
  return JSON.parse(await vsc('admin', 'user', 'create', '--org', 'RX1', '--forename', forename, '--surname', surname,
    '--email', email, '--mobile', mobile, '--json'));
}

/** The JSON API at `base`: `await api(method, url, body, token)` → {status, body}. */
export function apiClient(base) {
  return async (method, url, body, token) => {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${base}${url}`, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
}

/** A v2 card with role R8000 for `userId`, issued by the RA (`bootToken`) → the card. */
export async function issueCard(api, bootToken, userId) {
  const issued = await api('POST', `/api/v1/users/${userId}/cards`, { type: 'v2', roles: ['R8000'] }, bootToken);
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  return issued.body;
}

/**
 * Enrol `userId` through the JSON API (the enrolment pages have their own browser test): a card
 * issued, the token from the invitation text that `invitation()` finds, `passcode` and three
 * answers chosen, then the code that `code(choose)` returns after calling `choose()` (which sends
 * the passcode and answers) → the verify response body ({session, …}).
 */
export async function enrolThroughApi(api, { bootToken, userId, passcode, invitation, code }) {
  await issueCard(api, bootToken, userId);
  const token = (await invitation()).match(/\/self-service\/enrol\/([A-Za-z0-9_-]+)/)[1];
  const chosen = await code(async () => {
    const choose = await api('POST', `/api/v1/enrolment/${token}`, {
      passcode,
      answers: [{ question: 1, answer: 'Rex' }, { question: 2, answer: 'Leeds' }, { question: 3, answer: 'Blue' }],
    });
    assert.equal(choose.status, 202, JSON.stringify(choose.body));
  });
  const enrolled = await api('POST', `/api/v1/enrolment/${token}/verify`, { code: chosen });
  assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
  return enrolled.body;
}

/** The PIN test authenticators register with (the server requires one by default). */
export const DEVICE_PIN = '2468';

/**
 * `vsc authenticator register URI --passcode-stdin --pin-stdin --state-dir DIR --json` (the PIN on
 * the line after the passcode) → {status, stdout, stderr}.
 */
export function registerAuthenticator(bin, uri, { stateDir, env, passcode, pin = DEVICE_PIN }) {
  const args = ['authenticator', 'register', uri, '--passcode-stdin', '--pin-stdin', '--state-dir', stateDir, '--json'];
  return run(bin, args, { env, input: `${passcode}\n${pin}\n` });
}

/**
 * `vsc authenticator ARGS --state-dir DIR`, exiting 0 → stdout; `wait` and `scan` get the device's
 * PIN on standard input (`--pin-stdin`).
 */
export async function runAuthenticator(bin, args, { stateDir, env, pin = DEVICE_PIN }) {
  const answers = ['wait', 'scan'].includes(args[0]);
  const all = ['authenticator', ...args, ...(answers ? ['--pin-stdin'] : []), '--state-dir', stateDir];
  const r = await run(bin, all, { env, input: answers ? `${pin}\n` : '' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// --- The browser -----------------------------------------------------------------------------------

/**
 * Debian's Chromium, headless (`ctx.browser`), with one phone-sized page (the portal must read well
 * there) → {page, consoleErrors, submit}: `consoleErrors` collects console errors and page errors;
 * `submit(selector)` clicks and waits for the next page to load.
 */
export async function openBrowser(ctx) {
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
  return { page, consoleErrors, submit };
}

/** No page broke the Content-Security-Policy or logged an error. */
export function assertNoPageErrors(consoleErrors) {
  // Error statuses of pages (401, 410, 422 …) are logged by Chromium too; anything else is a fault.
  assert.deepEqual(consoleErrors.filter((e) => !/the server responded with a status of 4\d\d/.test(e)), []);
}

// --- Steps and failures ------------------------------------------------------------------------------

/** Named subtests of `t` that stop the test at the first failure (later steps build on earlier ones). */
export function stepper(t) {
  return async (name, fn) => {
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
}

/** Run `fn`; if it throws, keep `ctx.tmp` and print the last 40 lines of each of `logs` in it. */
export async function keepFilesOnFailure(ctx, logs, fn) {
  try {
    await fn();
  } catch (e) {
    ctx.failed = true;
    for (const log of logs) {
      const file = path.join(ctx.tmp, log);
      if (fs.existsSync(file)) console.error(`--- ${log} (last 40 lines)\n${fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
    console.error(`(files kept in ${ctx.tmp})`);
    throw e;
  }
}

// --- RA staff ----------------------------------------------------------------------------------------

/** RFC 4648 base32 (no padding) → bytes. */
export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `not base32: ${text}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s steps) of `secret` for `step` (default: now). */
export function totp(secret, step = Math.floor(Date.now() / 1000 / 30)) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const word = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(word % 1_000_000).padStart(6, '0');
}

/**
 * A staff member's first sign-in to the vRA Manager, as they would do it: the one-time
 * `passwordLink` (absolute or a path) sets `password`, then email + password lead to the TOTP
 * set-up, confirmed with the code computed from the key shown. Ends on `/ra`; returns the TOTP key.
 */
export async function staffFirstSignIn(page, submit, { base, passwordLink, email, password }) {
  const linkPath = passwordLink.slice(passwordLink.indexOf('/ra/set-password/'));
  await page.goto(`${base}${linkPath}`);
  await page.fill('#password', password);
  await page.fill('#confirm', password);
  await submit('button:has-text("Set password")');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await submit('button:has-text("Continue")');
  const secret = (await page.textContent('#totp-secret')).trim();
  await page.fill('#code', totp(secret));
  await submit('button:has-text("Confirm and sign in")');
  assert.equal(page.url(), `${base}/ra`);
  return secret;
}
