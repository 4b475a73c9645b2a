// Browser end-to-end test of authenticator devices in the Self-Service Portal.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; the binary is $VSC_BIN,
// else $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), a real SMTP server (Python's aiosmtpd,
// Debian package python3-aiosmtpd, writing a maildir) and a real HTTP SMS gateway receiver. A
// holder is enrolled through the JSON API, then Debian's Chromium (headless, playwright-core)
// signs in to the portal, adds a device, types the code from the email, reads the registration
// URI beside the QR code, and the real `vsc authenticator register` registers it; the device is
// listed as active with its client version and platform, then deleted.
// Run: node --test e2e/

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const artifacts = path.join(here, 'artifacts');

const MOBILE = '+447700900321';
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

/** A Python 3 that can import aiosmtpd: $PYTHON, the one on PATH, else Debian's /usr/bin/python3. */
function pythonWithAiosmtpd() {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', 'import aiosmtpd'], { stdio: 'ignore' }).status === 0) return py;
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

/** Every delivered message: {to, subject, text}, oldest first. */
function mailbox(maildir) {
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
async function nthMail(maildir, email, re, n, what) {
  return waitFor(what, () => {
    const mine = mailbox(maildir).filter((m) => m.to.toLowerCase().includes(email.toLowerCase()) && re.test(m.text));
    return mine.length > n && mine[n];
  });
}

// --- The SMS gateway ---------------------------------------------------------------------------

function smsGateway() {
  const received = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      try {
        received.push(JSON.parse(data));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"queued"}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  return { server, received };
}

async function nextSmsCode(received, after) {
  const sms = await waitFor('an SMS with a code', () => received.length > after && received[received.length - 1]);
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

test('a holder adds a device in the portal, registers it with the CLI and deletes it', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const python = pythonWithAiosmtpd();
  fs.mkdirSync(artifacts, { recursive: true });
  ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsc-e2e-devices-'));
  const dataDir = path.join(ctx.tmp, 'data');
  const maildir = path.join(ctx.tmp, 'maildir');
  const stateDir = path.join(ctx.tmp, 'authenticator');
  const [smtpPort, smsPort, port] = [await freePort(), await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  // A clean environment: no VSC_* or DATABASE_URL from the caller.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('VSC_') && k !== 'DATABASE_URL'),
  );
  const vsc = async (...args) => {
    const r = await run(bin, ['--data-dir', dataDir, ...args], { env });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const api = async (method, url, body, token) => {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${base}${url}`, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };

  try {
    ctx.smtp = start(python, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${smtpPort}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], {
      env,
      log: path.join(ctx.tmp, 'smtp.log'),
    });
    await waitFor('the SMTP server', () => portOpen(smtpPort));
    ctx.sms = smsGateway();
    await new Promise((r) => ctx.sms.server.listen(smsPort, '127.0.0.1', r));

    const boot = await vsc('admin', 'bootstrap', '--org', 'RX1', '--org-name', 'St Elsewhere NHS Trust',
      '--email-domain', 'example.nhs.uk', '--ra-email', 'ra@example.nhs.uk', '--ra-name', 'Rachel Admin', '--json');
    const email = 'devi.shah@example.nhs.uk';
    const user = await vsc('admin', 'user', 'create', '--org', 'RX1', '--forename', 'Devi', '--surname', 'Shah',
      '--email', email, '--mobile', MOBILE, '--json');

    ctx.serve = start(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
      env: {
        ...env,
        VSC_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        VSC_SMS_URL: `http://127.0.0.1:${smsPort}/sms`,
        VSC_PUBLIC_URL: base,
      },
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

    // A card, enrolled through the JSON API (the enrolment pages have their own browser test).
    const issued = await api('POST', `/api/v1/users/${user.id}/cards`, { type: 'v2', roles: ['R8000'] }, boot.token);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const invitation = await nthMail(maildir, email, /\/self-service\/enrol\//, 0, 'the invitation email');
    const token = invitation.text.match(/\/self-service\/enrol\/([A-Za-z0-9_-]+)/)[1];
    let sent = ctx.sms.received.length;
    const choose = await api('POST', `/api/v1/enrolment/${token}`, {
      passcode: PASSCODE,
      answers: [{ question: 1, answer: 'Rex' }, { question: 2, answer: 'Leeds' }, { question: 3, answer: 'Blue' }],
    });
    assert.equal(choose.status, 202, JSON.stringify(choose.body));
    const enrolled = await api('POST', `/api/v1/enrolment/${token}/verify`, { code: await nextSmsCode(ctx.sms.received, sent) });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));

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

    await step('the holder signs in to the portal', async () => {
      await page.goto(`${base}/self-service/sign-in`);
      await page.fill('#email', email);
      await page.fill('#passcode', PASSCODE);
      sent = ctx.sms.received.length;
      await submit('button:has-text("Continue")');
      await page.fill('#code', await nextSmsCode(ctx.sms.received, sent));
      await submit('button:has-text("Sign in")');
      assert.equal(page.url(), `${base}/self-service/`);
      assert.match(await page.textContent('main'), /No authenticator devices yet\./);
    });

    await step('"Add a device" asks for a name and type, then for the emailed code', async () => {
      await submit('#manage-devices');
      assert.equal(page.url(), `${base}/self-service/devices`);
      assert.match(await page.textContent('#devices-empty'), /no authenticator devices yet/);
      await submit('#add-device');
      assert.deepEqual(await page.locator('#authenticator_type option').allTextContents(), ['vsc Authenticator']);
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('#name-error'), /give the device a name/);
      await page.fill('#name', 'Work laptop');
      await page.selectOption('#device_type', 'desktop');
      await submit('button:has-text("Continue")');
      assert.match(page.url(), /\/self-service\/devices\/[0-9a-f-]+\/code$/);
      assert.match(await page.textContent('main'), /We emailed you a 6-digit code to confirm adding “Work laptop”/);
    });

    let uri;
    await step('the code from the email shows the QR code and the registration URI', async () => {
      const mail = await nthMail(maildir, email, /Work laptop/, 0, 'the device code email');
      assert.match(mail.subject, /authenticator device/i);
      const code = mail.text.match(/^\s*(\d{6})\s*$/m)[1];
      await page.fill('#code', code === '000000' ? '111111' : '000000');
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('#code-error'), /the code is wrong; 4 attempt\(s\) left/);
      await page.fill('#code', code);
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('h1'), /Scan the QR code/);
      assert.equal(await page.locator('#registration-qr svg').count(), 1);
      const box = await page.locator('#registration-qr svg').boundingBox();
      assert.ok(box.width >= 200 && box.height >= 200, `the QR code is big enough to scan: ${JSON.stringify(box)}`);
      assert.match(await page.textContent('main'), /expires in 10 minutes/);
      uri = await page.inputValue('#registration-uri');
      assert.match(uri, new RegExp(`^vsc-auth://register\\?v=1&url=${encodeURIComponent(base)}&t=vdr_[A-Za-z0-9_-]{43}$`));
      await page.screenshot({ path: '/tmp/devices-qr.png', fullPage: true });
      await page.screenshot({ path: path.join(artifacts, 'devices-qr.png'), fullPage: true });
    });

    await step('the QR code decodes to the same URI (when zbarimg is installed)', async (st) => {
      const zbar = spawnSync('zbarimg', ['--version'], { stdio: 'ignore' });
      if (zbar.status !== 0) {
        st.skip('zbarimg (Debian zbar-tools) is not installed');
        return;
      }
      const png = path.join(ctx.tmp, 'qr.png');
      await page.locator('#registration-qr').screenshot({ path: png });
      const r = spawnSync('zbarimg', ['--raw', '-q', png], { encoding: 'utf8' });
      assert.equal(r.stdout.trim(), uri);
    });

    await step('`vsc authenticator register` registers the device with the passcode', async () => {
      const r = await run(bin, ['authenticator', 'register', uri, '--passcode-stdin', '--state-dir', stateDir, '--json'], {
        env,
        input: `${PASSCODE}\n`,
      });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const out = JSON.parse(r.stdout);
      assert.equal(out.email, email);
      // The token is single-use.
      const again = await run(bin, ['authenticator', 'register', uri, '--passcode-stdin', '--state-dir', path.join(ctx.tmp, 'second'), '--json'], {
        env,
        input: `${PASSCODE}\n`,
      });
      assert.notEqual(again.status, 0);
      assert.match(again.stderr, /already used|expired/);
      ctx.deviceId = out.device_id;
    });

    await step('the device is listed as active with its client version and platform', async () => {
      await page.goto(`${base}/self-service/devices`);
      const device = page.locator(`#device-${ctx.deviceId}`);
      assert.equal((await device.locator('.device-name').textContent()).trim(), 'Work laptop');
      assert.equal((await device.locator('.device-state').textContent()).trim(), 'active');
      assert.match(await device.locator('.device-client').textContent(), /^\d+\.\d+\.\d+ on linux /);
      assert.match(await device.textContent(), /Desktop computer/);
      assert.match(await device.textContent(), /vsc Authenticator/);
      await page.screenshot({ path: path.join(artifacts, 'devices-list.png'), fullPage: true });
      const listed = await run(bin, ['authenticator', 'list', '--state-dir', stateDir, '--json'], { env });
      assert.equal(listed.status, 0, listed.stderr);
      assert.equal(JSON.parse(listed.stdout).device.id, ctx.deviceId);
    });

    await step('Delete removes the device, and it can no longer authenticate', async () => {
      await submit(`#device-${ctx.deviceId} button:has-text("Delete")`);
      assert.equal(page.url(), `${base}/self-service/devices?done=deleted`);
      assert.match(await page.textContent('.notice'), /the device has been deleted/);
      assert.equal(await page.locator(`#device-${ctx.deviceId}`).count(), 0);
      assert.match(await page.textContent('#devices-empty'), /no authenticator devices yet/);
      const listed = await run(bin, ['authenticator', 'list', '--state-dir', stateDir, '--json'], { env });
      assert.notEqual(listed.status, 0, 'a deleted device is refused');
    });

    await step('no page broke the Content-Security-Policy or logged an error', () => {
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
