// Browser end-to-end test of dual control over a holder's identity.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; $VSC_BIN, else
// $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc) with no mail gateways (messages stay in the
// outbox, read with `vsc admin outbox --json`). A holder enrols through the JSON API. In Debian's
// Chromium an RA agent asks to change the holder's email on the user page: the change waits; the
// RA manager sees the count in the header, approves it on "Pending approvals"; the holder's OLD
// address gets the notice with a "This was not me" link, which (after a confirmation page)
// suspends the card; `openssl ocsp` then says the certificate is on hold (certificateHold).
// Screenshots: e2e/artifacts/dual-control-*.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, enrolThroughApi, keepFilesOnFailure,
  openBrowser, run, sixDigits, staffFirstSignIn, startServe, stepper, testContext, vscBin, vscCli, waitFor,
  workspace,
} from './harness.mjs';

const MANAGER = 'ra@example.nhs.uk';
const AGENT = 'alex.agent@example.nhs.uk';
const PASSWORD = 'quince harbour violet 73';
const AGENT_PASSWORD = 'copper lantern meadow 41';
const HOLDER = 'ola.adeyemi@example.nhs.uk';
const NEW_EMAIL = 'someone.else@example.nhs.uk';
const MOBILE = '+447700900777';

const ctx = testContext();

/** Messages in the outbox to `to`, oldest first. */
async function outbox(vsc, to) {
  const out = await vsc('admin', 'outbox', '--to', to, '--json');
  return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

test('an agent asks, a manager approves, the holder blocks the card from the notice', { timeout: 240_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-dual-control-');
  const { base } = w;
  const vsc = vscCli(bin, w);
  const api = apiClient(base);
  const shot = (name) => path.join(artifacts, `dual-control-${name}.png`);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    const agentInvite = JSON.parse(await vsc('admin', 'staff', 'invite', '--email', AGENT, '--org', 'RX1', '--role', 'agent',
      '--name', 'Alex Agent', '--json'));
    await startServe(ctx, bin, w);
    const user = await createUser(vsc, { forename: 'Ola', surname: 'Adeyemi', email: HOLDER, mobile: MOBILE });
    const mail = async (to, kind) => waitFor(`a ${kind} message to ${to}`, async () => {
      const m = (await outbox(vsc, to)).reverse().find((x) => x.body && x.body.includes(kind));
      return m && m.body;
    });
    await enrolThroughApi(api, {
      bootToken: boot.token,
      userId: user.id,
      passcode: 'abc123',
      invitation: () => mail(HOLDER, '/self-service/enrol/'),
      code: async (choose) => {
        await choose();
        return sixDigits(await mail(MOBILE, 'code'));
      },
    });
    const card = (await api('GET', `/api/v1/users/${user.id}`, null, boot.token)).body.cards[0];
    assert.equal(card.state, 'active');

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    await page.setViewportSize({ width: 1280, height: 900 });
    const step = stepper(t);

    await step('the agent asks to change the email: nothing changes yet', async () => {
      await staffFirstSignIn(page, submit, { base, passwordLink: agentInvite.password_link, email: AGENT, password: AGENT_PASSWORD });
      await page.goto(`${base}/ra/users/${user.id}/edit`);
      await page.fill('#email', NEW_EMAIL);
      await submit('button:has-text("Change email address")');
      assert.match(await page.textContent('#note'), /takes effect when another RA manager approves it/);
      assert.equal((await page.textContent('#user-email')).trim(), HOLDER);
      assert.match(await page.textContent('#pending-changes'), /someone\.else@example\.nhs\.uk/);
      assert.match(await page.textContent('#pending-changes'), /alex\.agent@example\.nhs\.uk \(you\)/);
      await page.screenshot({ path: shot('requested'), fullPage: true });
      // The agent cannot approve: no Approve button on the page, only Withdraw.
      await page.goto(`${base}/ra/approvals`);
      assert.equal(await page.locator('button:has-text("Approve")').count(), 0);
      assert.equal(await page.locator('button:has-text("Withdraw")').count(), 1);
      await submit('#sign-out');
    });

    await step('the manager sees the count, approves on Pending approvals', async () => {
      await staffFirstSignIn(page, submit, { base, passwordLink: boot.password_link, email: MANAGER, password: PASSWORD });
      assert.equal((await page.textContent('#approvals-count')).trim(), '1');
      await submit('#nav-approvals');
      assert.equal(await page.getAttribute('#nav-approvals', 'aria-current'), 'page');
      const row = page.locator('#requests tbody tr');
      assert.equal(await row.count(), 1);
      assert.match(await row.textContent(), /Change the email address/);
      assert.match(await row.textContent(), new RegExp(`${HOLDER.replace(/\./g, '\\.')} → someone\\.else@example\\.nhs\\.uk`));
      await page.screenshot({ path: shot('pending'), fullPage: true });
      await submit('button:has-text("Approve")');
      assert.match(await page.textContent('#note'), /approved and applied/);
      assert.equal(await page.locator('#approvals-count').count(), 0, 'no badge once nothing waits');
      assert.equal(await page.locator('#requests-empty').count(), 1);
      const now = (await api('GET', `/api/v1/users/${user.id}`, null, boot.token)).body;
      assert.equal(now.email, NEW_EMAIL);
    });

    let notMe;
    await step('the old address gets the notice with a "This was not me" link', async () => {
      const body = await mail(HOLDER, '/self-service/not-me/');
      assert.match(body, /someone\.else@example\.nhs\.uk/);
      notMe = body.match(/https?:\/\/\S+\/self-service\/not-me\/[A-Za-z0-9_-]+/)[0];
    });

    await step('"This was not me" asks once more, then suspends the card', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(notMe);
      assert.match(await page.textContent('#what-changed'), /someone\.else@example\.nhs\.uk/);
      await page.screenshot({ path: shot('not-me'), fullPage: true });
      await submit('#block-card');
      assert.match(await page.textContent('h1'), /Your card is blocked/);
      await page.screenshot({ path: shot('blocked'), fullPage: true });
      const after = (await api('GET', `/api/v1/cards/${card.serial}`, null, boot.token)).body;
      assert.equal(after.state, 'suspended');
      assertNoPageErrors(consoleErrors);
    });

    await step('OCSP says the certificate is on hold', async () => {
      const dir = ctx.tmp;
      const chain = await (await fetch(`${base}/api/v1/pki/ca.pem`)).text();
      fs.writeFileSync(path.join(dir, 'chain.pem'), chain);
      const issuing = chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + '-----END CERTIFICATE-----'.length) + '\n';
      fs.writeFileSync(path.join(dir, 'issuing.pem'), issuing);
      fs.writeFileSync(path.join(dir, 'auth.pem'), card.certificates.authentication);
      const r = await run('openssl', ['ocsp', '-issuer', path.join(dir, 'issuing.pem'), '-cert', path.join(dir, 'auth.pem'),
        '-url', `${base}/api/v1/pki/ocsp`, '-CAfile', path.join(dir, 'chain.pem'), '-resp_text'], { env: process.env });
      const out = r.stdout + r.stderr;
      assert.match(out, /auth\.pem: revoked/, out);
      assert.match(out, /certificateHold/, out);
    });
  });
});
