import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { environment, expectHydrated, signIn } from '../support/console';

test('an admin creates an account, changes its role and disables it; it takes effect at once', async ({
  browser,
  page,
}) => {
  await signIn(page, USERS.admin);
  await page.getByRole('link', { name: 'Users' }).click();
  await expect(page).toHaveURL(/\/users$/);
  await expectHydrated(page);

  const username = `erin${Date.now() % 100000}`;
  const create = page.locator('form.create-user');
  await create.getByTestId('new-username').fill(username);
  await create.locator('select[name=role]').selectOption('deployer');
  await create.getByRole('button', { name: 'Create user' }).click();
  const issued = page.getByTestId('issued-password');
  await expect(issued).toHaveText(/^[A-Za-z0-9]{20}$/);
  const password = (await issued.innerText()).trim();
  // Shown in a dialog in front of the page until the admin says it is kept.
  const dialog = page.getByTestId('issued-dialog');
  await expect(dialog.getByRole('heading')).toHaveText(`Password for ${username}`);
  await dialog.getByTestId('issued-done').click();
  await expect(dialog).toBeHidden();
  const row = page.locator(`tr[data-user="${username}"]`);
  await expect(row).toContainText('enabled');

  // The new deployer signs in elsewhere and can deploy.
  const erinContext = await browser.newContext();
  const erin = await erinContext.newPage();
  await signIn(erin, { username, password });
  await expect(environment(erin).getByRole('button', { name: 'Deploy', exact: true })).toBeVisible();

  // Demoted to viewer: her next page load shows no deploy form.
  await row.locator('select[name=role]').selectOption('viewer');
  await row.getByRole('button', { name: 'Change role' }).click();
  await expect(page.getByTestId('users-result').filter({ hasText: `${username} is now viewer` })).toBeVisible();
  await erin.reload();
  await expect(environment(erin).getByText('Your role can view this environment but not change it.')).toBeVisible();

  // Disabled, after a confirmation: her session ends.
  await row.getByTestId('disable-open').click();
  await row.getByTestId('disable-confirm').click();
  await expect(page.locator(`tr[data-user="${username}"]`)).toContainText('disabled');
  await erin.reload();
  await expect(erin).toHaveURL(/\/login$/);
  await erinContext.close();
});

test('non-admins have no users page, and the server refuses them anyway', async ({ page }) => {
  await signIn(page, USERS.dana);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  const res = await page.request.post('/api/list_users', {
    headers: { Accept: 'application/json', Origin: 'http://127.0.0.1:3100' },
  });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain('deployer may not manage users');
});
