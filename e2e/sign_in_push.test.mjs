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

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, enrolThroughApi, keepFilesOnFailure, openBrowser,
  registerAuthenticator, runAuthenticator, sixDigits, startServe, stepper, testContext, vscBin, vscCli, waitFor, workspace,
} from './harness.mjs';

const MOBILE = '+447700900654';
const PASSCODE = 'abc123';

const ctx = testContext();

test('a holder signs in with a push approved on the authenticator, or its app code', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-sign-in-push-');
  const { base, env } = w;
  const stateDir = path.join(ctx.tmp, 'authenticator');
  const vsc = vscCli(bin, w);
  const api = apiClient(base);
  const authenticator = (...args) => runAuthenticator(bin, args, { stateDir, env });
  /** The newest outbox message of `kind` to `to` whose body matches `re`. */
  const outbox = (to, kind, re = /./) =>
    waitFor(`a ${kind} message to ${to}`, async () => {
      const lines = (await vsc('admin', 'outbox', '--to', to, '--json')).split('\n').filter(Boolean);
      return lines.map((l) => JSON.parse(l)).reverse().find((m) => m.kind === kind && re.test(m.body));
    });

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    const email = 'priya.push@example.nhs.uk';
    const user = await createUser(vsc, { forename: 'Priya', surname: 'Push', email, mobile: MOBILE });

    // No SMTP or SMS gateway: messages stay in the outbox.
    await startServe(ctx, bin, w);

    // A card enrolled and a device added through the JSON API; registered with the CLI.
    const { session } = await enrolThroughApi(api, {
      bootToken: boot.token,
      userId: user.id,
      passcode: PASSCODE,
      invitation: async () => (await outbox(email, 'invitation')).body,
      code: async (choose) => {
        await choose();
        return sixDigits((await outbox(MOBILE, 'enrolment_code')).body);
      },
    });
    const added = await api('POST', '/api/v1/self/devices', { name: 'Phone', device_type: 'phone' }, session);
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const deviceCode = sixDigits((await outbox(email, 'device_code')).body);
    const confirmed = await api('POST', `/api/v1/self/devices/${added.body.id}/verify`, { code: deviceCode }, session);
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
    const registered = await registerAuthenticator(bin, confirmed.body.registration_uri, { stateDir, env, passcode: PASSCODE });
    assert.equal(registered.status, 0, `${registered.stdout}\n${registered.stderr}`);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);
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

    await step('3 wrong passcodes lock the card; then the right one gets the wrong one\'s answer', async () => {
      const attempt = async (passcode) => {
        await page.goto(`${base}/self-service/sign-in`);
        await page.fill('#email', email);
        await page.fill('#passcode', passcode);
        const [response] = await Promise.all([
          page.waitForNavigation(),
          page.click('button:has-text("Continue")'),
        ]);
        return { status: response.status(), url: page.url(), main: (await page.textContent('main')).trim() };
      };
      const wrong = await attempt('wrong1');
      assert.equal(wrong.url, `${base}/self-service/sign-in`);
      assert.match(wrong.main, /email or passcode is wrong/);
      await attempt('wrong2');
      await attempt('wrong3');
      await outbox(email, 'card_locked', /entered wrongly 3 times/);
      const right = await attempt(PASSCODE);
      assert.deepEqual(right, wrong, 'a locked card answers the right passcode as a wrong one');
      await page.screenshot({ path: path.join(artifacts, 'sign-in-locked.png'), fullPage: true });
    });

    await step('no page broke the Content-Security-Policy or logged an error', () => assertNoPageErrors(consoleErrors));
  });
});
