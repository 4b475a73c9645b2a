// Browser end-to-end test of the vRA Manager's users list and user page (`/ra`, `/ra/users/{id}`).
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; $VSC_BIN, else
// $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), creates three users with the operator CLI
// (one with a card), signs the RA manager in (password link, password, TOTP set-up) in Debian's
// Chromium, then: typing in the search box narrows the table in place (htmx, no page load) and
// the address follows; a column header sorts in place both ways (arrow, aria-sort, address); the
// table scrolls sideways inside its wrapper on a phone-sized screen, not the page; a row opens the
// user page. Screenshots: e2e/artifacts/ra-users-*.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  apiClient, artifacts, assertNoPageErrors, bootstrapOrg, createUser, issueCard, keepFilesOnFailure, openBrowser,
  staffFirstSignIn, startServe, stepper, testContext, vscBin, vscCli, waitFor, workspace,
} from './harness.mjs';

const EMAIL = 'ra@example.nhs.uk';
const PASSWORD = 'plum orchard lantern 42';

const ctx = testContext();

/** The query parameter `name` of the page's address. */
function param(page, name) {
  return new URL(page.url()).searchParams.get(name);
}

/** The names in the users table, in order. */
async function names(page) {
  return (await page.locator('#users-table .user-link').allTextContents()).map((s) => s.trim());
}

test('RA staff search, sort and open users in the vRA Manager', { timeout: 120_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-ra-users-');
  const { base } = w;
  const vsc = vscCli(bin, w);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    const bob = await createUser(vsc, { forename: 'Bob', surname: 'Young', email: 'aa.bob.young@example.nhs.uk', mobile: '+447700900111' });
    const alice = await createUser(vsc, { forename: 'Alice', surname: 'Zephyr', email: 'zz.alice.zephyr@example.nhs.uk', mobile: '+447700900222' });
    await createUser(vsc, { forename: 'Siobhán', surname: "O'Sullivan-Longname-Of-Many-Parts", email: "siobhan.o'sullivan@example.nhs.uk", mobile: '+447700900333' });
    await startServe(ctx, bin, w);
    const card = await issueCard(apiClient(base), boot.token, alice.id);

    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);

    await step('the manager signs in (password link, password, TOTP set-up) to the users list', async () => {
      await staffFirstSignIn(page, submit, { base, passwordLink: boot.password_link, email: EMAIL, password: PASSWORD });
      assert.equal((await page.textContent('#users-summary')).trim(), '3 users · page 1 of 1');
      assert.deepEqual((await names(page)).map((n) => n.split(' ')[0]), ['Siobhán', 'Bob', 'Alice']);
      assert.match(await page.textContent('#users-table'), new RegExp(card.serial));
      await page.screenshot({ path: path.join(artifacts, 'ra-users-phone.png'), fullPage: true });
    });

    await step('on a phone the table scrolls inside its wrapper; headers line up with cells', async () => {
      const widths = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        view: window.innerWidth,
        wrapper: document.querySelector('.table-wrapper').scrollWidth,
        wrapperBox: document.querySelector('.table-wrapper').clientWidth,
      }));
      assert.ok(widths.page <= widths.view, JSON.stringify(widths));
      assert.ok(widths.wrapper > widths.wrapperBox, `the table scrolls in its wrapper: ${JSON.stringify(widths)}`);
      const ths = await page.locator('#users-table thead th').count();
      for (const row of await page.locator('#users-table tbody tr').all()) {
        assert.equal(await row.locator('td').count(), ths);
      }
      // Each header sits above its column's cells.
      const lefts = await page.evaluate(() => {
        const table = document.querySelector('#users-table');
        const heads = [...table.querySelectorAll('thead th')].map((c) => Math.round(c.getBoundingClientRect().left));
        const cells = [...table.querySelector('tbody tr').querySelectorAll('td')].map((c) => Math.round(c.getBoundingClientRect().left));
        return { heads, cells };
      });
      assert.deepEqual(lefts.heads, lefts.cells);
    });

    await page.setViewportSize({ width: 1280, height: 900 });
    await page.reload();
    // A marker that survives only while no full page load happens.
    await page.evaluate(() => { window.__stillHere = true; });

    await step('typing in the search box narrows the table in place and updates the address', async () => {
      await page.fill('#q', 'zeph');
      await waitFor('search results', async () => (await names(page)).length === 1);
      assert.match((await names(page))[0], /^Alice Zephyr/);
      await waitFor('the address', async () => param(page, 'q') === 'zeph');
      assert.equal(await page.evaluate(() => window.__stillHere), true, 'no page load');
      await page.fill('#q', 'ze');
      await waitFor('the short-text problem', async () => (await page.locator('#search-problem').count()) === 1);
      assert.match(await page.textContent('#search-problem'), /at least 3 characters/);
      await page.fill('#q', '');
      await waitFor('all users', async () => (await names(page)).length === 3);
    });

    await step('a column header sorts in place, both ways, with the address following', async () => {
      await page.click('#users-table a.sort-link[data-sort="Email"]');
      await waitFor('sorted by email', async () => page.url().includes('sort=email'));
      await waitFor('email order', async () => (await names(page))[0].startsWith('Bob Young'));
      assert.equal(await page.getAttribute('#users-table th[aria-sort]', 'aria-sort'), 'ascending');
      assert.match(await page.textContent('#users-table th[aria-sort]'), /Email ▲/);
      await page.click('#users-table a.sort-link[data-sort="Email"]');
      await waitFor('email descending', async () => page.url().includes('dir=desc'));
      await waitFor('reversed order', async () => (await names(page))[0].startsWith('Alice Zephyr'));
      assert.equal(await page.getAttribute('#users-table th[aria-sort]', 'aria-sort'), 'descending');
      assert.equal(page.url(), `${base}/ra?sort=email&dir=desc`);
      assert.equal(await page.evaluate(() => window.__stillHere), true, 'no page load');
      // The search keeps the sort.
      await page.fill('#q', 'example.nhs');
      await waitFor('search keeps the sort', async () => param(page, 'q') === 'example.nhs');
      assert.equal(param(page, 'sort'), 'email');
      assert.equal(param(page, 'dir'), 'desc');
      assert.equal((await names(page))[0].startsWith('Alice Zephyr'), true);
      await page.screenshot({ path: path.join(artifacts, 'ra-users-sorted.png'), fullPage: true });
    });

    await step('a row opens the user page with details, cards, devices and the audit log', async () => {
      await submit(`a[href="/ra/users/${alice.id}"]`);
      assert.equal(page.url(), `${base}/ra/users/${alice.id}`);
      assert.equal((await page.textContent('#user-uuid')).trim(), alice.id);
      assert.equal((await page.textContent('#user-email')).trim(), 'zz.alice.zephyr@example.nhs.uk');
      assert.match(await page.textContent('#cards-table'), new RegExp(`${card.serial}[\\s\\S]*R8000`));
      assert.equal((await page.textContent('#devices-empty')).trim(), 'No devices');
      assert.match(await page.textContent('#audit-table'), /card\.issued[\s\S]*user\.created/);
      await page.screenshot({ path: path.join(artifacts, 'ra-users-user-page.png'), fullPage: true });
      await page.goto(`${base}/ra/users/${bob.id}`);
      assert.equal((await page.textContent('#cards-empty')).trim(), 'No cards');
    });

    assertNoPageErrors(consoleErrors);
  });
});
