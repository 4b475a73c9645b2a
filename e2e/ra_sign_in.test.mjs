// Browser end-to-end test of the first RA manager sign-in to the vRA Manager (`/ra`).
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; the binary is $VSC_BIN,
// else $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc). `vsc admin bootstrap --json` prints the
// manager's one-time password link. Then Debian's Chromium (headless, playwright-core): the link's
// page sets the password (typed twice), sign-in with email and password goes to the TOTP set-up
// page (QR code and key), the code computed here from the shown key (RFC 6238, HMAC-SHA-1, as an
// authenticator app would) confirms it, and the home page shows the manager and the organisation;
// then sign-out, and a second sign-in that asks for a code instead of a new set-up.
// Screenshots: e2e/artifacts/ra-totp-setup.png, e2e/artifacts/ra-home.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  artifacts, assertNoPageErrors, bootstrapOrg, totp, keepFilesOnFailure, openBrowser, startServe, stepper, testContext,
  vscBin, vscCli, workspace,
} from './harness.mjs';

const EMAIL = 'ra@example.nhs.uk';
const PASSWORD = 'plum orchard lantern 42';

const ctx = testContext();

test('the first RA manager sign-in sets a password and two-step sign-in', { timeout: 120_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-ra-');
  const { base } = w;
  const vsc = vscCli(bin, w);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    assert.match(boot.password_link, /\/ra\/set-password\/[A-Za-z0-9_-]+$/);
    const linkPath = boot.password_link.slice(boot.password_link.indexOf('/ra/set-password/'));
    await startServe(ctx, bin, w);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);
    let secret;

    await step('/ra without a session goes to sign-in', async () => {
      await page.goto(`${base}/ra`);
      assert.equal(page.url(), `${base}/ra/sign-in`);
    });

    await step('the one-time link sets the password', async () => {
      await page.goto(`${base}${linkPath}`);
      assert.equal(await page.textContent('#staff-email'), EMAIL);
      await page.fill('#password', PASSWORD);
      await page.fill('#confirm', 'something else entirely');
      await submit('button:has-text("Set password")');
      assert.match(await page.textContent('#confirm-error'), /not the same/);
      await page.fill('#password', PASSWORD);
      await page.fill('#confirm', PASSWORD);
      await submit('button:has-text("Set password")');
      assert.equal(page.url(), `${base}/ra/sign-in?password=set`);
      assert.match(await page.textContent('main'), /your password is set/i);
    });

    await step('email and password lead to the TOTP set-up with a QR code and the key', async () => {
      await page.fill('#email', EMAIL);
      await page.fill('#password', PASSWORD);
      await submit('button:has-text("Continue")');
      assert.equal(page.url(), `${base}/ra/totp-setup`);
      assert.equal(await page.locator('#totp-qr svg').count(), 1);
      secret = (await page.textContent('#totp-secret')).trim();
      assert.match(secret, /^[A-Z2-7]{32}$/);
      await page.screenshot({ path: path.join(artifacts, 'ra-totp-setup.png'), fullPage: true });
    });

    await step('the code from the key confirms it and signs in to the home page', async () => {
      await page.fill('#code', totp(secret));
      await submit('button:has-text("Confirm and sign in")');
      assert.equal(page.url(), `${base}/ra`);
      assert.equal(await page.textContent('#staff-name'), 'Rachel Admin');
      assert.equal(await page.textContent('#staff-role'), 'RA Manager');
      assert.match(await page.textContent('#organisations'), /St Elsewhere NHS Trust \(RX1\)/);
      assert.equal((await page.textContent('#users-empty')).trim(), 'No users yet.');
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === 'vsc_ra');
      assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));
      await page.screenshot({ path: path.join(artifacts, 'ra-home.png'), fullPage: true });
    });

    await step('sign-out, then the next sign-in asks for a code (no new set-up)', async () => {
      await submit('#sign-out');
      assert.equal(page.url(), `${base}/ra/sign-in`);
      await page.goto(`${base}/ra`);
      assert.equal(page.url(), `${base}/ra/sign-in`);
      await page.fill('#email', EMAIL);
      await page.fill('#password', PASSWORD);
      await submit('button:has-text("Continue")');
      assert.equal(page.url(), `${base}/ra/sign-in/code`);
      // The set-up step's code may still be current; the next step's code is accepted too.
      await page.fill('#code', totp(secret, Math.floor(Date.now() / 1000 / 30) + 1));
      await submit('button:has-text("Sign in")');
      assert.equal(page.url(), `${base}/ra`);
    });

    assertNoPageErrors(consoleErrors);
  });
});
