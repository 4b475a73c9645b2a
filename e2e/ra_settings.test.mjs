// Browser end-to-end test of the vRA Manager's settings (`/ra/settings`).
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; $VSC_BIN, else
// $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), bootstraps RX1 with its RA manager and
// invites an RA agent with the operator CLI, then in Debian's Chromium: the manager signs in
// (password link, password, TOTP set-up), opens Settings from the header, adds a role, sees the
// default role's Delete disabled with its reason, and changes RX1's policy (number matching off,
// 60-minute sessions) whose effective values the page then shows; the agent signs in and opening
// Settings gets the refusal page (403). Screenshots: e2e/artifacts/ra-settings-*.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  artifacts, assertNoPageErrors, bootstrapOrg, keepFilesOnFailure, openBrowser, staffFirstSignIn, startServe, stepper,
  testContext, vscBin, vscCli, workspace,
} from './harness.mjs';

const MANAGER = 'ra@example.nhs.uk';
const AGENT = 'agent@example.nhs.uk';
const PASSWORD = 'plum orchard lantern 42';

const ctx = testContext();

test('an RA manager changes settings; an RA agent is refused', { timeout: 120_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-ra-settings-');
  const { base } = w;
  const vsc = vscCli(bin, w);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    const agent = JSON.parse(await vsc('admin', 'staff', 'invite', '--email', AGENT, '--org', 'RX1', '--role', 'agent',
      '--name', 'Alex Agent', '--json'));
    await startServe(ctx, bin, w);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);

    await step('the manager signs in and opens Settings from the header', async () => {
      await staffFirstSignIn(page, submit, { base, passwordLink: boot.password_link, email: MANAGER, password: PASSWORD });
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#nav-settings')]);
      assert.equal(page.url(), `${base}/ra/settings`);
      assert.equal((await page.textContent('h1')).trim(), 'Settings');
    });

    await step('the default role cannot be deleted: its Delete is disabled, with the reason', async () => {
      const row = page.locator('tr[data-role="R8000"]');
      assert.equal(await row.locator('button:has-text("Delete")').isDisabled(), true);
      assert.match(await row.textContent(), /Default role — cannot be deleted/);
    });

    await step('a role is added and can be deleted', async () => {
      await page.fill('#role-code', 'R9001');
      await page.fill('#role-name', 'Locum Access Role');
      await submit('button:has-text("Add role")');
      assert.match(page.url(), /saved=role-added/);
      assert.equal((await page.textContent('#notice')).trim(), 'The role was added.');
      const row = page.locator('tr[data-role="R9001"]');
      assert.equal(await row.locator('input[name="name"]').inputValue(), 'Locum Access Role');
      assert.equal(await row.locator('button:has-text("Delete")').isDisabled(), false);
      await page.screenshot({ path: path.join(artifacts, 'ra-settings-roles.png'), fullPage: false });
    });

    await step('a bad idle timeout is shown beside its field; a good policy takes effect', async () => {
      await page.selectOption('#number-matching-RX1', 'off');
      await page.fill('#session_minutes-RX1', '60');
      await page.fill('#idle_minutes-RX1', '90');
      await submit('button:has-text("Save policy for RX1")');
      assert.match(await page.textContent('#idle_minutes-RX1-error'), /session lifetime \(60 minutes\)/);
      assert.equal(await page.inputValue('#session_minutes-RX1'), '60');
      await page.locator('#policy-RX1').screenshot({ path: path.join(artifacts, 'ra-settings-policy-error.png') });
      await page.fill('#idle_minutes-RX1', '15');
      await page.check('#push-only-RX1');
      await submit('button:has-text("Save policy for RX1")');
      assert.equal((await page.textContent('#notice')).trim(), 'The policy was saved. New card sessions and logins use it.');
      assert.match(await page.textContent('#session_minutes-RX1-hint'), /In effect: 60 minutes\./);
      assert.match(await page.textContent('#reminder_days-RX1-hint'), /In effect: 3 days \(service default\)/);
      assert.equal(await page.inputValue('#number-matching-RX1'), 'off');
      assert.equal(await page.isChecked('#push-only-RX1'), true);
      await page.screenshot({ path: path.join(artifacts, 'ra-settings-phone.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.screenshot({ path: path.join(artifacts, 'ra-settings-desktop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
    });

    await step('an RA agent opening Settings gets the refusal page', async () => {
      await page.context().clearCookies();
      await staffFirstSignIn(page, submit, { base, passwordLink: agent.password_link, email: AGENT, password: PASSWORD });
      const response = await page.goto(`${base}/ra/settings`);
      assert.equal(response.status(), 403);
      assert.equal((await page.textContent('h1')).trim(), 'Settings are for RA managers');
      await page.screenshot({ path: path.join(artifacts, 'ra-settings-agent.png'), fullPage: true });
    });

    assertNoPageErrors(consoleErrors);
  });
});
