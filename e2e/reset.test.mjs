// Browser end-to-end test of "Forgotten your passcode?" in the Self-Service Portal.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; the binary is $VSC_BIN,
// else $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), a real SMTP server (aiosmtpd, writing
// a maildir) and an HTTP SMS gateway receiver. A holder is enrolled and an authenticator added
// through the JSON API and registered with the real `vsc authenticator register`. Then Debian's
// Chromium (headless, playwright-core): the sign-in page's "Forgotten your passcode?", the same
// answer for a known and an unknown address, the emailed link, the security questions, the app
// code from `vsc authenticator code`, the new passcode twice, the done page, the "passcode
// changed" email, and signing in with the new passcode; then a second reset whose push, approved
// with `vsc authenticator wait`, moves the page on by itself (its script, under its own CSP).
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, enrolThroughApi, keepFilesOnFailure, nextSmsCode,
  nthMail, openBrowser, pythonWithAiosmtpd, registerAuthenticator, runAuthenticator, sixDigits, startMail, startServe, stepper,
  testContext, vscBin, vscCli, workspace,
} from './harness.mjs';

const MOBILE = '+447700900777';
const PASSCODE = 'abc123';
const NEW_PASSCODE = 'new789';

const ctx = testContext();

test('a holder who forgot the passcode resets it from the emailed link', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const python = pythonWithAiosmtpd();
  const w = await workspace(ctx, 'vsc-e2e-reset-');
  const { base, env } = w;
  const stateDir = path.join(ctx.tmp, 'authenticator');
  const vsc = vscCli(bin, w);
  const api = apiClient(base);
  const authenticator = (...args) => runAuthenticator(bin, args, { stateDir, env });

  await keepFilesOnFailure(ctx, ['serve.log', 'smtp.log'], async () => {
    const { maildir, serveEnv } = await startMail(ctx, python, env);
    const boot = await bootstrapOrg(vsc);
    const email = 'ruth.reset@example.nhs.uk';
    const user = await createUser(vsc, { forename: 'Ruth', surname: "O'Reset", email, mobile: MOBILE });
    await startServe(ctx, bin, w, { ...serveEnv, VSC_SMS_API_KEY: 'test-key' });

    const { session } = await enrolThroughApi(api, {
      bootToken: boot.token,
      userId: user.id,
      passcode: PASSCODE,
      invitation: async () => (await nthMail(maildir, email, /\/self-service\/enrol\//, 0, 'the invitation')).text,
      code: async (choose) => {
        const before = ctx.sms.received.length;
        await choose();
        return nextSmsCode(ctx.sms.received, before, { to: MOBILE });
      },
    });
    const added = await api('POST', '/api/v1/self/devices', { name: 'Phone', device_type: 'phone' }, session);
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const deviceCode = sixDigits((await nthMail(maildir, email, /authenticator device/i, 0, 'the device code')).text);
    const confirmed = await api('POST', `/api/v1/self/devices/${added.body.id}/verify`, { code: deviceCode }, session);
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
    const registered = await registerAuthenticator(bin, confirmed.body.registration_uri, { stateDir, env, passcode: PASSCODE });
    assert.equal(registered.status, 0, `${registered.stdout}\n${registered.stderr}`);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);
    let link;

    await step('"Forgotten your passcode?" answers the same for a known and an unknown address', async () => {
      await page.goto(`${base}/self-service/sign-in`);
      await submit('text=Forgotten your passcode?');
      assert.equal(page.url(), `${base}/self-service/reset`);
      await page.fill('#email', 'nobody.here@example.nhs.uk');
      await submit('button:has-text("Send the link")');
      const unknown = await page.textContent('main');
      await page.goto(`${base}/self-service/reset`);
      await page.fill('#email', email);
      await submit('button:has-text("Send the link")');
      assert.equal(await page.textContent('main'), unknown);
      assert.match(unknown, /if this address has a virtual smartcard/i);
      const mail = await nthMail(maildir, email, /\/self-service\/reset\//, 0, 'the reset email');
      link = mail.text.match(/http:\/\/[^\s]+\/self-service\/reset\/[A-Za-z0-9_-]+/)[0];
      assert.ok(link.startsWith(base), link);
    });

    await step('the link asks the security questions, masked; a wrong answer is counted', async () => {
      await page.goto(link);
      assert.match(await page.textContent('h1'), /Answer your security questions/);
      for (const id of ['#answer1', '#answer2', '#answer3']) {
        assert.equal(await page.getAttribute(id, 'type'), 'password', `${id} is masked`);
      }
      await page.fill('#answer1', 'Rex');
      await page.fill('#answer2', 'Leeds');
      await page.fill('#answer3', 'Red');
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('main'), /2 attempt\(s\) left/);
      await page.fill('#answer1', 'rex');
      await page.fill('#answer2', ' LEEDS ');
      await page.fill('#answer3', 'Blue');
      await submit('button:has-text("Continue")');
      assert.match(await page.textContent('h1'), /Confirm it is you/);
    });

    await step('the app code confirms it is the holder; the new passcode is typed twice', async () => {
      const { code } = JSON.parse(await authenticator('code', '--json'));
      await page.fill('#code', code);
      await submit('button:has-text("Continue with the code")');
      assert.match(await page.textContent('h1'), /Choose a new passcode/);
      await page.fill('#passcode', PASSCODE);
      await page.fill('#confirm', PASSCODE);
      await submit('button:has-text("Save the new passcode")');
      assert.match(await page.textContent('main'), /different from your current one/);
      await page.fill('#passcode', NEW_PASSCODE);
      await page.fill('#confirm', NEW_PASSCODE);
      await submit('button:has-text("Save the new passcode")');
      assert.match(await page.textContent('h1'), /Your passcode is changed/);
      await page.screenshot({ path: path.join(artifacts, 'reset-done.png'), fullPage: true });
      await nthMail(maildir, email, /passcode of your virtual smartcard was changed/, 0, 'the passcode-changed email');
    });

    await step('the link works once; the new passcode signs in', async () => {
      const used = await page.goto(link);
      assert.equal(used.status(), 410);
      await page.goto(`${base}/self-service/sign-in`);
      await page.fill('#email', email);
      await page.fill('#passcode', NEW_PASSCODE);
      await submit('button:has-text("Continue")');
      assert.equal((await page.textContent('h1')).trim(), 'Approve on your phone');
      const number = (await page.textContent('#number')).match(/\d+/)[0];
      const home = page.waitForURL(`${base}/self-service/`, { timeout: 30_000 });
      assert.match(await authenticator('wait', '--approve', '--number', number, '--timeout', '20'), /state: approved/);
      await home;
      assert.match(await page.textContent('main'), /Ruth/);
    });

    await step('approving the push on the phone moves the page on by itself', async () => {
      await submit('button:has-text("Sign out")');
      await page.goto(`${base}/self-service/reset`);
      await page.fill('#email', email);
      await submit('button:has-text("Send the link")');
      const mail = await nthMail(maildir, email, /\/self-service\/reset\//, 1, 'the second reset email');
      const second = mail.text.match(/http:\/\/[^\s]+\/self-service\/reset\/[A-Za-z0-9_-]+/)[0];
      assert.notEqual(second, link);
      await page.goto(second);
      await page.fill('#answer1', 'Rex');
      await page.fill('#answer2', 'Leeds');
      await page.fill('#answer3', 'Blue');
      await submit('button:has-text("Continue")');
      const r = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button:has-text("Send the request")')]);
      assert.match(r[0].headers()['content-security-policy'], /script-src 'self'/);
      const number = (await page.textContent('#number')).match(/\d+/)[0];
      await page.screenshot({ path: path.join(artifacts, 'reset-push.png'), fullPage: true });
      const next = page.waitForSelector('h1:has-text("Choose a new passcode")', { timeout: 30_000 });
      const answered = await authenticator('wait', '--approve', '--number', number, '--timeout', '20');
      assert.match(answered, /Passcode reset/);
      assert.match(answered, /state: approved/);
      await next;
      await page.fill('#passcode', 'push42');
      await page.fill('#confirm', 'push42');
      await submit('button:has-text("Save the new passcode")');
      assert.match(await page.textContent('h1'), /Your passcode is changed/);
    });

    await step('no page broke the Content-Security-Policy or logged an error', () => assertNoPageErrors(consoleErrors));
  });
});
