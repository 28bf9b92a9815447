import * as fs from 'fs';
import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { environment, expectHydrated, historyRows, signIn } from '../support/console';

// Runs after the journey (03) and the failures (02, 04), whose actions it expects to find.

test('anyone signed in filters the audit log and opens an entry', async ({ page }) => {
  await signIn(page, USERS.victor);
  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expectHydrated(page);
  const rows = page.getByTestId('audit-table').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  // A signed checkpoint (the journey's deploys signed some) vouches for the
  // log, and the console's verification found it intact.
  const seal = page.getByTestId('audit-seal');
  await expect(seal).toContainText(/Newest signed checkpoint: #\d+ of .+ vouches for \d+ entries/);
  await expect(seal).toContainText('verified');
  await expect(page.getByTestId('audit-seal-broken')).toHaveCount(0);

  const filter = page.getByTestId('audit-filter');
  await filter.locator('input[name=actor]').fill('dana');
  await filter.locator('input[name=action]').fill('rollback');
  await filter.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/actor=dana/);
  await expect(page).toHaveURL(/action=rollback/);

  // Only dana's rollback entries remain: start and finish of the journey's rollback.
  await expect(rows).not.toHaveCount(0);
  const count = await rows.count();
  for (let i = 0; i < count; i++) {
    await expect(rows.nth(i).locator('td').nth(2)).toContainText('dana');
    await expect(rows.nth(i).locator('td').nth(4)).toHaveText(/^rollback\.(start|finish)$/);
  }
  const start = rows.filter({ hasText: 'rollback.start' }).first();
  await expect(start).toContainText('e2e: checkout errors after v2');
  await expect(start.locator('td').nth(3)).toHaveText(/^127\.0\.0\.1$/);

  // Open the entry: its recorded details show as fields, and its hash.
  const entry = start.getByTestId('audit-entry');
  await entry.locator('summary').click();
  const details = entry.getByTestId('audit-details');
  await expect(details.locator('dt', { hasText: /^from_slot$/ })).toBeVisible();
  await expect(entry.locator('code')).toHaveText(/^[0-9a-f]{64}$/);
  // The deployment it names is a link to that deployment's page.
  const deployment = details.locator('dt', { hasText: /^deployment$/ }).locator('xpath=following-sibling::dd[1]');
  const id = (await deployment.innerText()).trim();
  expect(id).toMatch(/^\d+$/);
  await deployment.getByRole('link').click();
  await expect(page).toHaveURL(new RegExp(`/deployments/${id}$`));
  await expect(page.getByRole('heading', { level: 1 })).toContainText(id);
  // And the actor's name leads to everything that person did.
  await page.goBack();
  await page.getByTestId('audit-table').locator('tbody tr').first().locator('td').nth(2).getByRole('link', { name: 'dana' }).click();
  await expect(page).toHaveURL(/\/audit\?actor=dana$/);
});

test('failed sign-ins are on record, without the password typed', async ({ page }) => {
  await signIn(page, USERS.victor);
  await page.goto('/audit?action=auth.login');
  const failed = page.getByTestId('audit-table').locator('tbody tr.result-failed');
  await expect(failed.first()).toBeVisible();
  await expect(failed.first().locator('td').nth(2)).toContainText('(anonymous)');
  const text = await page.getByTestId('audit-table').innerText();
  expect(text).not.toContain('deployer-password-2');
  expect(text).not.toContain(USERS.dana.password);
});

test('the export follows the filter', async ({ page }) => {
  await signIn(page, USERS.victor);
  await page.goto('/audit?action=deploy.start');
  const href = await page.getByTestId('export-csv').getAttribute('href');
  expect(href).toContain('action=deploy.start');
  const res = await page.request.get(href!);
  expect(res.status()).toBe(200);
  const lines = (await res.text()).trim().split('\n');
  expect(lines[0]).toMatch(/^id,at,actor_kind,actor_name/);
  expect(lines.length).toBeGreaterThan(1);
  for (const line of lines.slice(1)) expect(line).toContain(',deploy.start,');
});

test('clicking an export link downloads the file', async ({ page }) => {
  await signIn(page, USERS.victor);
  await page.goto('/audit?action=deploy.start');
  await expectHydrated(page);
  // Both links are downloads: the client-side router must not take them for
  // pages (it used to answer "Page not found.").
  for (const [testid, name, first] of [
    ['export-csv', 'switchyard-audit.csv', /^id,at,actor_kind,actor_name/],
    ['export-jsonl', 'switchyard-audit.jsonl', /^\{/],
  ] as const) {
    const downloading = page.waitForEvent('download');
    await page.getByTestId(testid).click();
    const download = await downloading;
    expect(download.suggestedFilename()).toBe(name);
    const path = await download.path();
    const text = fs.readFileSync(path, 'utf8');
    expect(text).toMatch(first);
    expect(text).toContain('deploy.start');
    await expect(page).toHaveURL(/\/audit\?action=deploy\.start$/);
    await expect(page.getByText('Page not found.')).toHaveCount(0);
  }
});

test('a deployment in the history links to its audit entries', async ({ page }) => {
  await signIn(page, USERS.victor);
  const env = environment(page);
  const firstRow = historyRows(env).first();
  const id = (await firstRow.locator('td').first().innerText()).trim();
  await firstRow.locator('td').first().getByRole('link').click();
  await expect(page).toHaveURL(new RegExp(`/audit\\?environment=production&q=deployment%20${id}$`));
  const rows = page.getByTestId('audit-table').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  await rows.first().getByTestId('audit-entry').locator('summary').click();
  await expect(rows.first().getByTestId('audit-details').getByRole('link', { name: id, exact: true })).toHaveAttribute(
    'href',
    `/deployments/${id}`,
  );
});
