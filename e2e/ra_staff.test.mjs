// Browser end-to-end test of staff management in the vRA Manager (`/ra/staff`) and of
// organisation scoping: the RA manager of RX1 and RX2 invites an agent for RX1 from the portal;
// the link (only in the invitation email in the outbox) lets the agent sign in in a
// second browser; the agent sees the users of RX1 but not of RX2, both in the users list and in
// `GET /api/v1/users` with an API token of theirs, and is refused staff management; the manager
// disables the agent, whose next page load goes to sign-in and whose token stops working.
// Screenshots: e2e/artifacts/ra-staff-*.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, keepFilesOnFailure, openBrowser,
  staffFirstSignIn, startServe, stepper, testContext, vscBin, vscCli, workspace,
} from './harness.mjs';

const MANAGER = 'ra@example.nhs.uk';
const AGENT = 'alex.agent@example.nhs.uk';
const PASSWORD = 'plum orchard lantern 42';
const AGENT_PASSWORD = 'quiet harbour compass 17';

const ctx = testContext();

/** The names in the users table. */
async function names(page) {
  return (await page.locator('#users-table .user-link').allTextContents()).map((s) => s.trim());
}

test('an RA manager invites an agent who sees only their organisation, then disables them', { timeout: 120_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-ra-staff-');
  const { base } = w;
  const vsc = vscCli(bin, w);
  const api = apiClient(base);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    // The same manager for a second organisation.
    await vsc('admin', 'bootstrap', '--org', 'RX2', '--org-name', 'Other Valley NHS Trust', '--email-domain', 'other.nhs.uk',
      '--ra-email', MANAGER, '--ra-name', 'Rachel Admin', '--json');
    await createUser(vsc, { forename: 'Ada', surname: 'Inside', email: 'ada.inside@example.nhs.uk', mobile: '+447700900111' });
    await vsc('admin', 'user', 'create', '--org', 'RX2', '--forename', 'Otto', '--surname', 'Outside',
      '--email', 'otto.outside@other.nhs.uk', '--mobile', '+447700900222', '--json');
    await startServe(ctx, bin, w);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    await page.setViewportSize({ width: 1280, height: 900 });
    const step = stepper(t);
    let link;
    let agentPage;
    let agentSubmit;
    let agentToken;

    await step('the manager signs in and opens Staff from the navigation', async () => {
      // The bootstrap's link was replaced by the second bootstrap's: ask for a fresh one.
      const invite = JSON.parse(await vsc('admin', 'staff', 'invite', '--email', MANAGER, '--org', 'RX1', '--role', 'manager', '--json'));
      await staffFirstSignIn(page, submit, { base, passwordLink: invite.password_link, email: MANAGER, password: PASSWORD });
      assert.ok(boot.token);
      await submit('#nav-staff');
      assert.equal(page.url(), `${base}/ra/staff`);
      assert.match(await page.textContent('#staff-table'), /Rachel Admin[\s\S]*RA Manager[\s\S]*RX1, RX2[\s\S]*Active/);
    });

    await step('the manager invites an agent for RX1; the link is emailed to the agent only', async () => {
      await submit('#invite-staff');
      assert.equal(page.url(), `${base}/ra/staff/new`);
      await page.screenshot({ path: path.join(artifacts, 'ra-staff-invite-form.png'), fullPage: true });
      // Nothing chosen: the problem is shown beside the organisations.
      await page.fill('#email', AGENT);
      await page.fill('#name', "Alex O'Agent");
      await page.check('#role-agent');
      await submit('#send-invitation');
      assert.match(await page.textContent('#organisations-error'), /at least one organisation/);
      assert.equal(await page.inputValue('#email'), AGENT);
      await page.check('#org-RX1');
      await submit('#send-invitation');
      assert.equal((await page.textContent('#invited-email')).trim(), AGENT);
      assert.ok(!(await page.content()).includes('/ra/set-password/'), 'the link is not shown to the manager');
      await page.screenshot({ path: path.join(artifacts, 'ra-staff-invited.png'), fullPage: true });
      const mail = (await vsc('admin', 'outbox', '--to', AGENT, '--json')).trim().split('\n').map((l) => JSON.parse(l));
      const invitation = mail.find((m) => m.kind === 'staff_invitation');
      assert.ok(invitation, JSON.stringify(mail));
      link = invitation.body.match(/http:\/\/127\.0\.0\.1:\d+\/ra\/set-password\/vsp_[A-Za-z0-9_-]+/)[0];
      assert.match(invitation.body, /as RA Agent for RX1/);
    });

    await step('the agent signs in from the link in a second browser and sees only RX1 users', async () => {
      const context = await ctx.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
      agentPage = await context.newPage();
      agentPage.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
      agentSubmit = async (button) => {
        await Promise.all([agentPage.waitForNavigation({ waitUntil: 'load' }), agentPage.click(button)]);
      };
      await staffFirstSignIn(agentPage, agentSubmit, { base, passwordLink: link, email: AGENT, password: AGENT_PASSWORD });
      assert.equal((await agentPage.textContent('#staff-role')).trim(), 'RA Agent');
      const seen = await names(agentPage);
      assert.ok(seen.some((n) => n.startsWith('Ada Inside')), JSON.stringify(seen));
      assert.ok(!seen.some((n) => n.includes('Outside')), JSON.stringify(seen));
      // The manager sees both.
      await page.goto(`${base}/ra`);
      const all = await names(page);
      assert.ok(all.some((n) => n.startsWith('Otto Outside')), JSON.stringify(all));
    });

    await step('the JSON API agrees: the agent’s token lists RX1 users only', async () => {
      agentToken = JSON.parse(await vsc('admin', 'token', 'create', '--email', AGENT, '--json')).token;
      const listed = await api('GET', '/api/v1/users', undefined, agentToken);
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      const text = JSON.stringify(listed.body);
      assert.ok(text.includes('ada.inside@example.nhs.uk'), text);
      assert.ok(!text.includes('otto.outside@other.nhs.uk'), text);
      assert.equal((await api('GET', '/api/v1/staff', undefined, agentToken)).status, 403);
    });

    await step('staff management is refused to the agent', async () => {
      const r = await agentPage.goto(`${base}/ra/staff`);
      assert.equal(r.status(), 403);
      assert.equal((await agentPage.textContent('h1')).trim(), 'Staff management is for RA managers');
      await agentPage.screenshot({ path: path.join(artifacts, 'ra-staff-agent-refused.png'), fullPage: true });
      await agentPage.goto(`${base}/ra`);
    });

    await step('the manager disables the agent: the next page load goes to sign-in, the token stops', async () => {
      await page.goto(`${base}/ra/staff`);
      await page.screenshot({ path: path.join(artifacts, 'ra-staff-list.png'), fullPage: true });
      await submit(`#staff-table tr[data-staff="${AGENT}"] a.button`);
      assert.equal((await page.textContent('#staff-member-organisations')).trim(), 'RX1');
      await page.screenshot({ path: path.join(artifacts, 'ra-staff-member.png'), fullPage: true });
      await submit('#disable');
      assert.equal((await page.textContent('#staff-member-status')).trim(), 'Disabled');
      assert.match(await page.textContent('#note'), /sessions ended/);
      await agentPage.reload();
      assert.equal(agentPage.url(), `${base}/ra/sign-in`);
      assert.equal((await api('GET', '/api/v1/users', undefined, agentToken)).status, 401);
    });

    assertNoPageErrors(consoleErrors);
  });
});
