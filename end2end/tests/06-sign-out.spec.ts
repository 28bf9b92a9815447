import { expect, test } from '../support/test';
import { CONSOLE_URL, USERS } from '../support/constants';
import { expectHydrated, signIn } from '../support/console';

test('signing out returns to /login and ends the session', async ({ page }) => {
  await signIn(page, USERS.dana);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
  await expectHydrated(page);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();

  await page.goto('/');
  await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
  await expect(page.getByTestId('current-user')).toHaveCount(0);
});
