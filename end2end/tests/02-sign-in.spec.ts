import { expect, test } from '../support/test';
import { CONSOLE_URL, USERS } from '../support/constants';
import { expectHydrated } from '../support/console';

test('signed-out visitors are sent to /login', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

async function tryToSignIn(page: import('@playwright/test').Page, username: string, password: string) {
  await page.goto('/login');
  await expectHydrated(page);
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('wrong password shows the error and stays on /login', async ({ page }) => {
  await tryToSignIn(page, USERS.dana.username, 'deployer-password-2');
  await expect(page.getByTestId('login-error')).toHaveText('wrong username or password');
  await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
  await expect(page.getByTestId('current-user')).toHaveCount(0);
  // Still signed out: the dashboard sends us back.
  await page.goto('/');
  await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
});

test('unknown user gets the identical message', async ({ page }) => {
  await tryToSignIn(page, USERS.dana.username, 'deployer-password-2');
  const wrongPassword = ((await page.getByTestId('login-error').textContent()) ?? '').trim();

  await tryToSignIn(page, 'nobody-here', USERS.dana.password);
  await expect(page.getByTestId('login-error')).toHaveText(wrongPassword);
  expect(wrongPassword).toBe('wrong username or password');
  await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
});
