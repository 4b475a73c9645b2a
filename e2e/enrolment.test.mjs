// Browser end-to-end test of enrolment and sign-in in the Self-Service Portal.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; the binary is $VSC_BIN,
// else $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), a real SMTP server (Python's aiosmtpd,
// Debian package python3-aiosmtpd, writing a maildir) and a real HTTP SMS gateway receiver, then
// drives Debian's Chromium (/usr/bin/chromium, headless) with playwright-core, as a holder would:
// the invitation email's link, a passcode that breaks a rule, a good one, three questions, the SMS
// code, the portal home; then a reused link, an expired link, sign-out and sign-in again.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, invitationLink, issueCard, keepFilesOnFailure,
  nextSmsCode, openBrowser, pythonWithAiosmtpd, startMail, startServe, stepper, testContext, vscBin, vscCli, workspace,
} from './harness.mjs';

const CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const MOBILE = '+447700900123';
const PASSCODE = 'abc123';

const ctx = testContext();

test('a holder enrols from the invitation email and signs in again', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const python = pythonWithAiosmtpd('sqlite3');
  // The workspace's environment drops the caller's DATABASE_URL: this test edits SQLite.
  const w = await workspace(ctx, 'vsc-e2e-');
  const { dataDir, base, env } = w;
  const vsc = vscCli(bin, w);
  const api = apiClient(base);
  const nextCode = (after) => nextSmsCode(ctx.sms.received, after, { to: MOBILE, auth: 'Bearer test-key' });

  await keepFilesOnFailure(ctx, ['serve.log', 'smtp.log'], async () => {
    // Mail and SMS receivers.
    const { maildir, serveEnv } = await startMail(ctx, python, env);

    // An organisation, an RA manager and a holder, from the operator CLI.
    const boot = await bootstrapOrg(vsc);
    const email = 'grainne.oneill@example.nhs.uk';
    const user = await createUser(vsc, { forename: 'Gráinne', surname: "O'Neill", email, mobile: MOBILE });

    // The server, with SMTP and the SMS gateway configured through the environment.
    await startServe(ctx, bin, w, { ...serveEnv, VSC_SMS_API_KEY: 'test-key' });

    const card = await issueCard(api, boot.token, user.id);
    assert.match(card.serial, /^150/);
    const link = await invitationLink(maildir, email, base);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);
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
      const code = await nextCode(sent);
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
      const user2 = await createUser(vsc, { forename: 'Sam', surname: 'Patel', email: other, mobile: '+447700900456' });
      await issueCard(api, boot.token, user2.id);
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
      const code = await nextCode(sent);
      await page.fill('#code', code);
      await submit('button:has-text("Sign in")');
      assert.equal(page.url(), `${base}/self-service/`);
      assert.equal((await page.textContent('#serial')).trim(), card.serial);
    });

    await step('no page broke the Content-Security-Policy or logged an error', () => assertNoPageErrors(consoleErrors));
  });
});
