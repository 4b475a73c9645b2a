// Browser end-to-end test of enrolment and sign-in in the Self-Service Portal.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; the binary is $VSC_BIN,
// else $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), a real SMTP server (Python's aiosmtpd,
// Debian package python3-aiosmtpd, writing a maildir) and a real HTTP SMS gateway receiver, then
// drives Debian's Chromium (/usr/bin/chromium, headless) with playwright-core, as a holder would:
// the invitation email's link, a passcode that breaks a rule, a good one, three questions, the SMS
// code, the portal home; then a reused link, an expired link, sign-out and sign-in again.
// Run: node --test e2e/

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const artifacts = path.join(here, 'artifacts');
const execFileP = promisify(execFile);

const CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const MOBILE = '+447700900123';
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

// --- Small helpers ---------------------------------------------------------------------------------

function vscBin() {
  const bin =
    process.env.VSC_BIN ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'vsc');
  assert.ok(fs.existsSync(bin), `no vsc binary at ${bin}: build it first with \`cargo build -p vsc-cli\` (or set VSC_BIN)`);
  return bin;
}

/** A Python 3 that can import aiosmtpd: $PYTHON, the one on PATH, else Debian's /usr/bin/python3. */
function pythonWithAiosmtpd() {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', 'import aiosmtpd, sqlite3'], { stdio: 'ignore' }).status === 0) return py;
  }
  assert.fail('the SMTP server needs the Python module aiosmtpd: apt-get install -y python3-aiosmtpd');
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

function portOpen(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
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

// --- Reading mail from the maildir ------------------------------------------------------------

function decodeQuotedPrintable(text) {
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
function splitEntity(raw) {
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

function decodeBody({ headers, body }) {
  const cte = (headers['content-transfer-encoding'] || '7bit').toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(body);
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

/** The text/plain part of a message (searching nested multiparts), or null. */
function plainText(raw) {
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

/** Every delivered message: {to, subject, text}. */
function mailbox(maildir) {
  const dir = path.join(maildir, 'new');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort().map((f) => {
    const raw = fs.readFileSync(path.join(dir, f), 'utf8');
    const { headers } = splitEntity(raw);
    return { to: headers['to'] || '', subject: headers['subject'] || '', text: plainText(raw) || '' };
  });
}

/** The enrolment link of the newest invitation to `email`. */
async function invitationLink(maildir, email, base) {
  const linkRe = new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/self-service/enrol/[A-Za-z0-9_-]+`);
  return waitFor(`the invitation email to ${email}`, () => {
    const mine = mailbox(maildir).filter((m) => m.to.toLowerCase().includes(email.toLowerCase()));
    const found = mine.map((m) => m.text.match(linkRe)).filter(Boolean).pop();
    return found && found[0];
  });
}

// --- The SMS gateway ---------------------------------------------------------------------------

function smsGateway() {
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

async function nextCode(received, after) {
  const sms = await waitFor('an SMS with a code', () => received.length > after && received[received.length - 1]);
  assert.equal(sms.to, MOBILE);
  assert.equal(sms.auth, 'Bearer test-key');
  const m = sms.body.match(/\b(\d{6})\b/);
  assert.ok(m, `no code in ${sms.body}`);
  return m[1];
}

// --- The test ----------------------------------------------------------------------------------

const ctx = {};

after(async () => {
  await ctx.browser?.close().catch(() => {});
  await stop(ctx.serve);
  await stop(ctx.smtp);
  await new Promise((r) => (ctx.sms ? ctx.sms.server.close(r) : r()));
  killAll();
  if (ctx.tmp && !ctx.failed) fs.rmSync(ctx.tmp, { recursive: true, force: true });
});

test('a holder enrols from the invitation email and signs in again', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const python = pythonWithAiosmtpd();
  fs.mkdirSync(artifacts, { recursive: true });
  ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsc-e2e-'));
  const dataDir = path.join(ctx.tmp, 'data');
  const maildir = path.join(ctx.tmp, 'maildir');
  const [smtpPort, smsPort, port] = [await freePort(), await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  // A clean environment: no VSC_* or DATABASE_URL from the caller (this test edits SQLite).
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('VSC_') && k !== 'DATABASE_URL'),
  );
  const serveEnv = {
    ...env,
    VSC_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    VSC_SMS_URL: `http://127.0.0.1:${smsPort}/sms`,
    VSC_SMS_API_KEY: 'test-key',
    VSC_PUBLIC_URL: base,
  };
  const vsc = async (...args) => {
    const { stdout } = await execFileP(bin, ['--data-dir', dataDir, ...args], { env });
    return JSON.parse(stdout);
  };

  try {
    // Mail and SMS receivers.
    ctx.smtp = start(python, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${smtpPort}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], {
      env,
      log: path.join(ctx.tmp, 'smtp.log'),
    });
    await waitFor('the SMTP server', () => portOpen(smtpPort));
    ctx.sms = smsGateway();
    await new Promise((r) => ctx.sms.server.listen(smsPort, '127.0.0.1', r));

    // An organisation, an RA manager and a holder, from the operator CLI.
    const boot = await vsc('admin', 'bootstrap', '--org', 'RX1', '--org-name', 'St Elsewhere NHS Trust',
      '--email-domain', 'example.nhs.uk', '--ra-email', 'ra@example.nhs.uk', '--ra-name', 'Rachel Admin', '--json');
    const email = 'grainne.oneill@example.nhs.uk';
    const user = await vsc('admin', 'user', 'create', '--org', 'RX1', '--forename', 'Gráinne', '--surname', "O'Neill",
      '--email', email, '--mobile', MOBILE, '--json');

    // The server, with SMTP and the SMS gateway configured through the environment.
    ctx.serve = start(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
      env: serveEnv,
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

    const issue = async (userId) => {
      const r = await fetch(`${base}/api/v1/users/${userId}/cards`, {
        method: 'POST',
        headers: { authorization: `Bearer ${boot.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'v2', roles: ['R8000'] }),
      });
      assert.equal(r.status, 201, await r.clone().text());
      return r.json();
    };
    const card = await issue(user.id);
    assert.match(card.serial, /^150/);
    const link = await invitationLink(maildir, email, base);

    ctx.browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    // A phone-sized window: the portal must read well there.
    const context = await ctx.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-GB' });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const submit = async (button) => {
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(button)]);
    };
    // Named steps that stop the test at the first failure (later steps build on earlier ones).
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
    const chooseQuestions = async () => {
      await page.selectOption('#question1', { label: 'What was the name of your first pet?' });
      await page.selectOption('#question2', { label: 'In which town or city were you born?' });
      await page.selectOption('#question3', { label: 'What was the name of your first school?' });
      await page.fill('#answer1', 'Rex');
      await page.fill('#answer2', 'Leeds');
      await page.fill('#answer3', 'Hill Top Primary');
    };

    await step('the invitation link opens the enrolment form', async () => {
      const r = await page.goto(link);
      assert.equal(r.status(), 200);
      assert.equal(r.headers()['content-security-policy'], CSP);
      assert.equal(r.headers()['x-frame-options'], 'DENY');
      assert.match(await page.textContent('h1'), /Set up your virtual smartcard/);
      assert.match(await page.textContent('main'), /Gráinne O'Neill/);
      assert.equal((await page.textContent('#serial')).trim(), card.serial);
      for (const id of ['#passcode', '#confirm', '#answer1', '#answer2', '#answer3']) {
        assert.equal(await page.getAttribute(id, 'type'), 'password', `${id} is masked`);
      }
      assert.equal(await page.locator('#mobile').count(), 0, 'the mobile number is on record');
      assert.equal(await page.locator('select').count(), 3);
    });

    await step('a passcode that breaks a rule is named beside the field', async () => {
      await page.fill('#passcode', 'abcdef');
      await page.fill('#confirm', 'abcdef');
      await chooseQuestions();
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('#passcode-error'), /the passcode needs at least one digit/);
      assert.match(await page.textContent('.error-summary'), /There is a problem/);
      // The questions are kept; the secrets are not.
      assert.equal(await page.inputValue('#question2'), '2');
      assert.equal(await page.inputValue('#answer2'), '');
      assert.equal(await page.inputValue('#passcode'), '');
      await page.screenshot({ path: path.join(artifacts, 'enrol-error.png'), fullPage: true });
    });

    let sent = ctx.sms.received.length;
    await step('a good passcode and three questions lead to the code page', async () => {
      await page.fill('#passcode', PASSCODE);
      await page.fill('#confirm', PASSCODE);
      await chooseQuestions();
      await submit('button:has-text("Continue")');
      assert.equal(page.url(), `${link}/code`);
      assert.match(await page.textContent('main'), /We sent a 6-digit code to •••• 0123/);
      assert.equal(await page.getAttribute('#code', 'inputmode'), 'numeric');
      assert.equal(await page.getAttribute('#code', 'autocomplete'), 'one-time-code');
      await page.screenshot({ path: path.join(artifacts, 'code.png'), fullPage: true });
    });

    await step('the SMS code completes enrolment and opens the portal home', async () => {
      const code = await nextCode(ctx.sms.received, sent);
      await page.fill('#code', code);
      await submit('button:has-text("Continue")');
      assert.equal(page.url(), `${base}/self-service/`);
      assert.equal((await page.textContent('#serial')).trim(), card.serial);
      assert.equal((await page.textContent('#uuid')).trim(), user.id);
      assert.equal((await page.textContent('#card-state')).trim(), 'active');
      assert.equal((await page.textContent('#email-state')).trim(), 'confirmed');
      assert.match(await page.textContent('main'), /St Elsewhere NHS Trust/);
      assert.match(await page.textContent('main'), /No authenticator devices yet\./);
      await page.screenshot({ path: path.join(artifacts, 'home.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.screenshot({ path: path.join(artifacts, 'home-desktop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
    });

    await step('the used link says so and points to sign-in', async () => {
      const r = await page.goto(link);
      assert.equal(r.status(), 410);
      assert.match(await page.textContent('h1'), /already been used/);
      assert.equal(await page.getAttribute('main a.button', 'href'), '/self-service/sign-in');
    });

    await step('an expired link says so and sends the holder to their RA', async () => {
      const other = 'sam.patel@example.nhs.uk';
      const user2 = await vsc('admin', 'user', 'create', '--org', 'RX1', '--forename', 'Sam', '--surname', 'Patel',
        '--email', other, '--mobile', '+447700900456', '--json');
      await issue(user2.id);
      const link2 = await invitationLink(maildir, other, base);
      const sql = 'import sqlite3, sys\n' +
        'db = sqlite3.connect(sys.argv[1])\n' +
        'db.execute("UPDATE enrolments SET expires_at = 0 WHERE completed_at IS NULL")\n' +
        'db.commit()\n';
      const py = spawnSync(python, ['-c', sql, path.join(dataDir, 'vsc.db')], { encoding: 'utf8' });
      assert.equal(py.status, 0, py.stderr);
      const r = await page.goto(link2);
      assert.equal(r.status(), 410);
      assert.match(await page.textContent('h1'), /This link has expired/);
      assert.match(await page.textContent('main'), /contact your Registration Authority \(RA\)/i);
      await page.screenshot({ path: path.join(artifacts, 'expired.png'), fullPage: true });
    });

    await step('sign out, then sign in again with passcode and SMS code', async () => {
      await page.goto(`${base}/self-service/`);
      await submit('button:has-text("Sign out")');
      assert.equal(page.url(), `${base}/self-service/sign-in`);
      const r = await page.goto(`${base}/self-service/`);
      assert.equal(page.url(), `${base}/self-service/sign-in`, 'the session ended');
      assert.equal(r.status(), 200);

      await page.fill('#email', 'Grainne.ONeill@example.nhs.uk');
      await page.fill('#passcode', 'wrong1');
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('.error-summary'), /the email or passcode is wrong/);

      sent = ctx.sms.received.length;
      await page.fill('#passcode', PASSCODE);
      await submit('button:has-text("Continue")');
      assert.equal(page.url(), `${base}/self-service/sign-in/code`);
      assert.match(await page.textContent('main'), /•••• 0123/);
      await page.screenshot({ path: path.join(artifacts, 'sign-in-code.png'), fullPage: true });
      const code = await nextCode(ctx.sms.received, sent);
      await page.fill('#code', code);
      await submit('button:has-text("Sign in")');
      assert.equal(page.url(), `${base}/self-service/`);
      assert.equal((await page.textContent('#serial')).trim(), card.serial);
    });

    await step('no page broke the Content-Security-Policy or logged an error', () => {
      // Error statuses of pages (401, 410, 422 …) are logged by Chromium too; anything else is a fault.
      assert.deepEqual(consoleErrors.filter((e) => !/the server responded with a status of 4\d\d/.test(e)), []);
    });
  } catch (e) {
    ctx.failed = true;
    for (const log of ['serve.log', 'smtp.log']) {
      const file = path.join(ctx.tmp, log);
      if (fs.existsSync(file)) console.error(`--- ${log} (last 40 lines)\n${fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
    console.error(`(files kept in ${ctx.tmp})`);
    throw e;
  }
});
