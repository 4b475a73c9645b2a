// Browser end-to-end test of the CSV import of users in the vRA Manager (`/ra/import`).
//
// Starts the real `vsc serve` (built beforehand: `cargo build -p vsc-cli`; $VSC_BIN, else
// $CARGO_TARGET_DIR/debug/vsc, else target/debug/vsc), signs the RA manager in (password link,
// password, TOTP set-up) in Debian's Chromium, then: the nav leads to the import page, whose
// sample link downloads a CSV file; a file with an error row shows the problem (row, column,
// reason) and imports nothing; a good file (the sample plus 1,500 users) goes through the progress
// page (htmx polling) to "Imported …", and the users are in the list. Screenshots:
// e2e/artifacts/ra-import-*.png.
// Run: node --test e2e/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  artifacts, assertNoPageErrors, bootstrapOrg, keepFilesOnFailure, openBrowser, staffFirstSignIn, startServe, stepper,
  testContext, vscBin, vscCli, workspace,
} from './harness.mjs';

const EMAIL = 'ra@example.nhs.uk';
const PASSWORD = 'plum orchard lantern 42';
const HEADER = 'organisation,forename,surname,email,mobile,subject_cn,directory_account,card_type,roles';

const ctx = testContext();

/** Choose `csv` as the file and submit the form; resolves on the next page. */
async function uploadCsv(page, submit, name, csv) {
  await page.setInputFiles('#file', { name, mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8') });
  await submit('#import-submit');
}

test('RA staff import users from a CSV file in the vRA Manager', { timeout: 180_000 }, async (t) => {
  const bin = vscBin();
  const w = await workspace(ctx, 'vsc-e2e-ra-import-');
  const { base } = w;
  const vsc = vscCli(bin, w);

  await keepFilesOnFailure(ctx, ['serve.log'], async () => {
    const boot = await bootstrapOrg(vsc);
    await startServe(ctx, bin, w);
    const { page, consoleErrors, submit } = await openBrowser(ctx);
    const step = stepper(t);
    let sample = '';

    await step('the manager signs in and opens the import page from the navigation', async () => {
      await staffFirstSignIn(page, submit, { base, passwordLink: boot.password_link, email: EMAIL, password: PASSWORD });
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#nav-import')]);
      assert.equal(new URL(page.url()).pathname, '/ra/import');
      assert.equal((await page.textContent('h1')).trim(), 'Import users');
      await page.screenshot({ path: path.join(artifacts, 'ra-import-form.png'), fullPage: true });
    });

    await step('the sample link downloads a CSV file for the organisation', async () => {
      const href = await page.getAttribute('#sample-csv', 'href');
      const response = await page.request.get(new URL(href, base).toString());
      assert.equal(response.status(), 200);
      assert.match(response.headers()['content-type'], /^text\/csv/);
      assert.match(response.headers()['content-disposition'], /attachment; filename="users-sample\.csv"/);
      sample = await response.text();
      const lines = sample.trim().split(/\r?\n/);
      assert.equal(lines[0], HEADER);
      assert.equal(lines.length, 4);
      assert.ok(lines.slice(1).every((l) => l.startsWith('RX1,') && l.includes('@example.nhs.uk')), sample);
    });

    await step('a file with an error row shows row, column and reason, and imports nothing', async () => {
      const bad = `${HEADER}\nRX1,Ann,Good,ann.good@example.nhs.uk,,,,,\nRX1,Bob,Bad,bob.bad@elsewhere.example,,,,,\n`;
      await uploadCsv(page, submit, 'bad.csv', bad);
      assert.match(new URL(page.url()).pathname, /^\/ra\/import\/[A-Za-z0-9_-]+$/);
      await page.waitForSelector('#import-errors', { timeout: 20_000 });
      const cells = await page.locator('#import-errors tbody tr').first().locator('td').allTextContents();
      assert.deepEqual(cells.slice(0, 2), ['3', 'email']);
      assert.match(cells[2], /email domain elsewhere\.example is not allowed for organisation RX1/);
      assert.equal(await page.locator('#import-errors tbody tr').count(), 1);
      assert.match(await page.textContent('.error-summary'), /Nothing was imported/);
      await page.screenshot({ path: path.join(artifacts, 'ra-import-errors.png'), fullPage: true });
      await page.goto(`${base}/ra?q=ann.good`);
      assert.match(await page.textContent('main'), /No users|0 users/i);
      await page.goBack();
    });

    await step('a good file goes through the progress page to the result; the users are in the list', async () => {
      await page.goto(`${base}/ra/import`);
      const many = Array.from({ length: 1500 }, (_, i) => `RX1,Bulk,Importee,bulk.${i}@example.nhs.uk,,,,${i % 100 === 0 ? 'v1,R8000' : ','}`);
      await uploadCsv(page, submit, 'users.csv', `${sample.trim()}\n${many.join('\n')}\n`);
      assert.match(new URL(page.url()).pathname, /^\/ra\/import\/[A-Za-z0-9_-]+$/);
      await page.screenshot({ path: path.join(artifacts, 'ra-import-progress.png'), fullPage: true });
      await page.waitForSelector('#import-done', { timeout: 60_000 });
      assert.equal((await page.textContent('#import-done')).trim(), 'Imported 1,503 users (16 cards)');
      await page.screenshot({ path: path.join(artifacts, 'ra-import-done.png'), fullPage: true });
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#to-users')]);
      assert.match(await page.textContent('#users-summary'), /1,?503 users/);
      const adaEmail = sample.match(/ada\.lovelace\.\d+@example\.nhs\.uk/)[0];
      await page.goto(`${base}/ra?q=${encodeURIComponent(adaEmail)}`);
      assert.match(await page.textContent('#users-table'), /Lovelace/);
    });

    assertNoPageErrors(consoleErrors);
  });
});
