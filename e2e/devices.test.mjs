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

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, enrolThroughApi, keepFilesOnFailure, nextSmsCode,
  nthMail, openBrowser, pythonWithAiosmtpd, registerAuthenticator, run, startMail, startServe, stepper, testContext,
  vscBin, vscCli, workspace,
} from './harness.mjs';

const MOBILE = '+447700900321';
const PASSCODE = 'abc123';

const ctx = testContext();

test('a holder adds a device in the portal, registers it with the CLI and deletes it', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const python = pythonWithAiosmtpd();
  const w = await workspace(ctx, 'vsc-e2e-devices-');
  const { base, env } = w;
  const stateDir = path.join(ctx.tmp, 'authenticator');
  const vsc = vscCli(bin, w);
  const api = apiClient(base);

  await keepFilesOnFailure(ctx, ['serve.log', 'smtp.log'], async () => {
    const { maildir, serveEnv } = await startMail(ctx, python, env);

    const boot = await bootstrapOrg(vsc);
    const email = 'devi.shah@example.nhs.uk';
    const user = await createUser(vsc, { forename: 'Devi', surname: 'Shah', email, mobile: MOBILE });

    await startServe(ctx, bin, w, serveEnv);

    // A card, enrolled through the JSON API (the enrolment pages have their own browser test).
    await enrolThroughApi(api, {
      bootToken: boot.token,
      userId: user.id,
      passcode: PASSCODE,
      invitation: async () => (await nthMail(maildir, email, /\/self-service\/enrol\//, 0, 'the invitation email')).text,
      code: async (choose) => {
        const sent = ctx.sms.received.length;
        await choose();
        return nextSmsCode(ctx.sms.received, sent);
      },
    });

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);

    await step('the holder signs in to the portal', async () => {
      await page.goto(`${base}/self-service/sign-in`);
      await page.fill('#email', email);
      await page.fill('#passcode', PASSCODE);
      const sent = ctx.sms.received.length;
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
      const r = await registerAuthenticator(bin, uri, { stateDir, env, passcode: PASSCODE });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const out = JSON.parse(r.stdout);
      assert.equal(out.email, email);
      // The token is single-use.
      const again = await registerAuthenticator(bin, uri, { stateDir: path.join(ctx.tmp, 'second'), env, passcode: PASSCODE });
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

    await step('no page broke the Content-Security-Policy or logged an error', () => assertNoPageErrors(consoleErrors));
  });
});
