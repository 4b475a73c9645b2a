// Browser end-to-end test of a user's life in the vRA Manager, in one flow.
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; $VSC_BIN, else
// $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc) with cards valid for 20 days and no mail
// gateways (messages stay in the outbox, read with `vsc admin outbox --json`). In Debian's Chromium
// the RA manager signs in (password link, password, TOTP set-up), then: creates a user with the
// form; issues a card with a role on the user page, which updates in place (htmx) with the audit
// log showing card.issued; the audit log also refreshes by itself when a change is made elsewhere
// (the JSON API); the pending users page lists the user and its CSV export has the invited,
// reminded and link-expiry columns; the expiring page lists the card; a device the holder started
// adding (never finished) is deleted after a confirmation step. Header links are styled, the
// current page marked, and error pages under /ra use the vRA Manager's layout.
// Screenshots: e2e/artifacts/ra-user-admin-*.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, enrolThroughApi, keepFilesOnFailure, openBrowser,
  staffFirstSignIn, startServe, stepper, testContext, vscBin, vscCli, waitFor, workspace,
} from './harness.mjs';

const EMAIL = 'ra@example.nhs.uk';
const PASSWORD = 'quince harbour violet 73';
const HOLDER = 'nia.okafor@example.nhs.uk';
const MOBILE = '+447700900654';

const ctx = testContext();

/** Messages in the outbox to `to`, oldest first. */
async function outbox(vsc, to) {
  const out = await vsc('admin', 'outbox', '--to', to, '--json');
  return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Each header cell's left edge equals the left edge of the cells below it. */
async function assertColumnsAligned(page, table) {
  const lefts = await page.evaluate((sel) => {
    const t = document.querySelector(sel);
    const heads = [...t.querySelectorAll('thead th')].map((c) => Math.round(c.getBoundingClientRect().left));
    const rows = [...t.querySelectorAll('tbody tr')].map((r) => [...r.querySelectorAll('td')].map((c) => Math.round(c.getBoundingClientRect().left)));
    return { heads, rows };
  }, table);
  for (const row of lefts.rows) assert.deepEqual(row, lefts.heads, `${table} columns line up with their headers`);
}

test('RA staff create a user, issue a card, follow the reports and delete a device', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-ra-user-admin-');
  const { base } = w;
  const vsc = vscCli(bin, w);
  const api = apiClient(base);
  const shot = (name) => path.join(artifacts, `ra-user-admin-${name}.png`);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    await startServe(ctx, bin, w, { VSC_CARD_VALIDITY_DAYS: '20' });
    const { page, consoleErrors, submit } = await openBrowser(ctx);
    await page.setViewportSize({ width: 1280, height: 900 });
    const step = stepper(t);
    let userPath;
    let serial;

    await step('the manager signs in; the header links are styled and the current page marked', async () => {
      await staffFirstSignIn(page, submit, { base, passwordLink: boot.password_link, email: EMAIL, password: PASSWORD });
      assert.equal(await page.getAttribute('#nav-users', 'aria-current'), 'page');
      assert.equal(await page.getAttribute('#nav-pending', 'aria-current'), null);
      const style = await page.$eval('#nav-pending', (a) => {
        const s = getComputedStyle(a);
        return { color: s.color, line: s.textDecorationLine };
      });
      assert.deepEqual(style, { color: 'rgb(255, 255, 255)', line: 'none' });
    });

    await step('the create form makes the user and opens their page', async () => {
      await page.goto(`${base}/ra/users/new`);
      await page.fill('#forename', 'Nia');
      await page.fill('#surname', "Okafor-D'Souza");
      await page.fill('#email', HOLDER);
      await page.fill('#mobile', MOBILE);
      await page.fill('#directory_account', 'CORP\\nia.okafor');
      await page.screenshot({ path: shot('new'), fullPage: true });
      await submit('button:has-text("Create user")');
      assert.match(page.url(), /\/ra\/users\/[0-9a-f-]{36}$/);
      userPath = new URL(page.url()).pathname;
      assert.equal((await page.textContent('#user-email')).trim(), HOLDER);
      assert.equal((await page.textContent('#cards-empty')).trim(), 'No cards');
      assert.match(await page.textContent('#directory-table'), /CORP\\nia\.okafor[\s\S]*pending[\s\S]*Not yet/);
      assert.match(await page.textContent('#audit-table'), /user\.created/);
    });

    await step('issuing a card updates the page in place, audit log included; the invitation is in the outbox', async () => {
      await page.evaluate(() => { window.__stillHere = true; });
      await page.selectOption('#card-type', 'v2');
      await page.check('#role-R8000');
      await page.click('#issue-card-form button[type="submit"]');
      await waitFor('the card note', async () => /issued; the invitation was sent/.test((await page.locator('#note').textContent().catch(() => '')) ?? ''));
      assert.equal(await page.evaluate(() => window.__stillHere), true, 'no page load');
      serial = (await page.getAttribute('#cards-table tbody tr', 'data-card')).trim();
      assert.match(await page.textContent('#cards-table'), /R8000/);
      assert.match(await page.textContent('#audit-table'), /card\.issued[\s\S]*user\.created/);
      const invitation = (await outbox(vsc, HOLDER)).find((m) => m.kind === 'invitation');
      assert.ok(invitation, 'an invitation in the outbox');
      assert.match(invitation.body, /\/self-service\/enrol\//);
      await assertColumnsAligned(page, '#cards-table');
      await assertColumnsAligned(page, '#audit-table');
      await page.screenshot({ path: shot('user'), fullPage: true });
    });

    await step('problems show beside the form in place; a directory account is added in place', async () => {
      await page.click('#issue-card-form button[type="submit"]');
      await waitFor('the role problem', async () => (await page.locator('#issue-error').count()) === 1);
      assert.match(await page.textContent('#issue-error'), /Choose at least one role/);
      await page.fill('#directory-name', 'not valid!');
      await page.click('#directory-form button[type="submit"]');
      await waitFor('the name problem', async () => (await page.locator('#directory-error').count()) === 1);
      assert.match(await page.textContent('#directory-error'), /64 letters/);
      assert.equal(await page.inputValue('#directory-name'), 'not valid!');
      await page.fill('#directory-name', 'nia.okafor@corp.example');
      await page.click('#directory-form button[type="submit"]');
      await waitFor('the account note', async () => /was added/.test((await page.locator('#note').textContent().catch(() => '')) ?? ''));
      assert.match(await page.textContent('#directory-table'), /nia\.okafor@corp\.example[\s\S]*pending/);
      assert.match(await page.locator('#audit-table tbody tr').first().textContent(), /directory_account\.added/);
      assert.equal(await page.evaluate(() => window.__stillHere), true, 'no page load');
      await assertColumnsAligned(page, '#directory-table');
    });

    await step('the audit log refreshes by itself when the user changes elsewhere', async () => {
      const id = userPath.split('/').pop();
      const patched = await api('PATCH', `/api/v1/users/${id}`, { mobile: '+447700900655' }, boot.token);
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      await waitFor('user.mobile_changed in the log', async () => /user\.mobile_changed/.test(await page.textContent('#audit-log')), { timeout: 15_000 });
      assert.equal(await page.evaluate(() => window.__stillHere), true, 'no page load');
      const first = (await page.locator('#audit-table tbody tr').first().textContent());
      assert.match(first, /user\.mobile_changed/, 'newest first');
    });

    await step('the edit page changes the subject CN and removes the mobile', async () => {
      await page.click('#edit-user');
      await waitFor('the edit page', async () => page.url().endsWith('/edit'));
      await page.fill('#subject_cn', 'Nia Okafor 2');
      await page.fill('#mobile', '');
      await page.screenshot({ path: shot('edit'), fullPage: true });
      await page.click('#names-form button[type="submit"]');
      await waitFor('the user page', async () => page.url().includes('done=names_changed'));
      assert.equal((await page.textContent('#user-subject-cn')).trim(), 'Nia Okafor 2');
      assert.equal((await page.textContent('#user-mobile')).trim(), '—');
      assert.match(await page.textContent('#audit-table'), /user\.subject_cn_changed[\s\S]*user\.mobile_changed/);
      // Put the number back for the holder's text message codes later.
      const id = userPath.split('/').pop();
      assert.equal((await api('PATCH', `/api/v1/users/${id}`, { mobile: '+447700900655' }, boot.token)).status, 200);
    });

    await step('the pending users page lists the user; the CSV has the invitation columns', async () => {
      await page.goto(`${base}/ra/pending`);
      assert.equal(await page.getAttribute('#nav-pending', 'aria-current'), 'page');
      assert.match(await page.textContent('#pending'), new RegExp(`Nia[\\s\\S]*${serial}`));
      await assertColumnsAligned(page, '#pending');
      await page.screenshot({ path: shot('pending'), fullPage: true });
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#pending-csv')]);
      const csv = fs.readFileSync(await download.path(), 'utf8');
      const [header, ...rows] = csv.trim().split(/\r?\n/);
      assert.match(header, /invited/i);
      assert.match(header, /remind/i);
      assert.match(header, /link.?expi/i);
      assert.equal(rows.length, 1, csv);
      assert.match(rows[0], new RegExp(serial));
    });

    await step('the expiring page lists the card (valid for 20 days)', async () => {
      await page.goto(`${base}/ra/expiring`);
      assert.equal(await page.getAttribute('#nav-expiring', 'aria-current'), 'page');
      assert.match(await page.textContent('#expiring'), new RegExp(serial));
      await assertColumnsAligned(page, '#expiring');
      await page.screenshot({ path: shot('expiring'), fullPage: true });
    });

    await step('a device the holder never finished adding is deleted after a confirmation', async () => {
      const id = userPath.split('/').pop();
      // The holder enrols (through the API, codes from the outbox) and starts adding a device.
      const enrolled = await enrolThroughApi(api, {
        bootToken: boot.token,
        userId: id,
        passcode: 'abc123',
        invitation: async () => (await outbox(vsc, HOLDER)).filter((m) => m.kind === 'invitation').pop().body,
        code: async (choose) => {
          await choose();
          const sms = (await outbox(vsc, '+447700900655')).pop();
          return sms.body.match(/\b(\d{6})\b/)[1];
        },
      });
      const added = await api('POST', '/api/v1/self/devices', { name: 'Old tablet', device_type: 'tablet' }, enrolled.session);
      assert.equal(added.status, 201, JSON.stringify(added.body));

      await page.goto(`${base}${userPath}`);
      const row = page.locator(`#devices-table tr[data-device-id="${added.body.id}"]`);
      assert.match(await row.textContent(), /Old tablet[\s\S]*Waiting for the emailed code/);
      await assertColumnsAligned(page, '#devices-table');
      // Enrolment completed: the directory account is active now.
      assert.match(await page.textContent('#directory-table'), /CORP\\nia\.okafor[\s\S]*active/);
      await page.click(`a[aria-label="Delete device Old tablet"]`);
      await waitFor('the confirmation', async () => page.url().endsWith(`/devices/${added.body.id}/delete`));
      assert.equal((await page.textContent('#confirm-title')).trim(), 'Delete device Old tablet?');
      assert.match(await page.textContent('#confirm-details'), /tablet[\s\S]*Waiting for the emailed code/);
      await page.screenshot({ path: shot('confirm-delete'), fullPage: true });
      await page.click('#confirm-button');
      await waitFor('back on the user page', async () => page.url().includes('done=device_deleted'));
      assert.equal((await page.textContent('#note')).trim(), 'The device was deleted.');
      assert.equal((await page.textContent('#devices-empty')).trim(), 'No devices');
      assert.match(await page.locator('#audit-table tbody tr').first().textContent(), /device\.deleted/);
      await page.screenshot({ path: shot('deleted'), fullPage: true });
      // On a phone the page does not scroll sideways (wide tables scroll inside their wrappers).
      await page.setViewportSize({ width: 390, height: 844 });
      const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, view: window.innerWidth }));
      assert.ok(widths.page <= widths.view, JSON.stringify(widths));
      await page.screenshot({ path: shot('user-phone'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    await step('an error page under /ra is in the vRA Manager layout', async () => {
      const r = await page.goto(`${base}/ra/users/${'0'.repeat(8)}-0000-4000-8000-000000000000/devices/x/delete`);
      assert.equal(r.status(), 404);
      const missing = await page.goto(`${base}/ra/no-such-page`);
      assert.equal(missing.status(), 404);
      assert.match(await page.textContent('.site-header'), /vRA Manager/);
      assert.equal(await page.getAttribute('main a.button', 'href'), '/ra');
      await page.screenshot({ path: shot('not-found'), fullPage: true });
    });

    assertNoPageErrors(consoleErrors);
  });
});
