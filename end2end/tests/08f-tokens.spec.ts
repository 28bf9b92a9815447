import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { expectHydrated, signIn } from '../support/console';

// A deployer makes an API token for a pipeline, sees it once, the pipeline uses it,
// and the deployer revokes it: the same token is refused from then on.
test('a deployer makes a token, a pipeline uses it, and revoking it stops it', async ({ page, playwright }) => {
  await signIn(page, USERS.dana);
  await page.getByRole('link', { name: 'Tokens' }).click();
  await expect(page).toHaveURL(/\/tokens$/);
  await expectHydrated(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('API tokens');

  // A role above the deployer's is not even offered.
  const role = page.getByTestId('token-role');
  await expect(role.locator('option')).toHaveText(['viewer', 'deployer']);

  await page.getByTestId('token-name').fill('e2e-pipeline');
  await role.selectOption('deployer');
  await page.getByTestId('token-environments').fill('production');
  await page.getByRole('button', { name: 'Make token' }).click();
  const secretField = page.getByTestId('token-secret');
  await expect(secretField).toHaveValue(/^sy_[a-z2-9]{8}_[0-9a-f]{64}$/);
  const secret = await secretField.inputValue();
  // Copy says so only when the clipboard really holds the secret.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], {
    origin: new URL(page.url()).origin,
  });
  await page.getByTestId('copy-token').click();
  await expect(page.getByTestId('copy-token')).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  const row = page.locator('tr[data-token="e2e-pipeline"]');
  await expect(row).toContainText(`sy_${secret.slice(3, 11)}`);

  // A second live token of the same name is refused, and says why.
  await page.getByTestId('token-name').fill('e2e-pipeline');
  await page.getByRole('button', { name: 'Make token' }).click();
  await expect(page.getByTestId('action-error')).toContainText('a live token named "e2e-pipeline" already exists');
  await expect(page.locator('tr[data-token="e2e-pipeline"]')).toHaveCount(1);
  await expect(row).toContainText(`sy_${secret.slice(3, 11)}`);
  await expect(row).toContainText('production');

  // The pipeline: no cookie, only the token.
  const pipeline = await playwright.request.newContext({ baseURL: page.url() });
  const me = await pipeline.get('/api/v1/me', { headers: { Authorization: `Bearer ${secret}` } });
  expect(me.status(), await me.text()).toBe(200);
  expect(await me.json()).toMatchObject({ username: 'dana', role: 'deployer', environments: ['production'] });

  // Shown once: a reload shows the prefix, never the secret.
  await page.reload();
  await expectHydrated(page);
  await expect(page.getByTestId('token-secret')).toHaveCount(0);
  expect(await page.content()).not.toContain(secret.slice(12));

  // Revoking asks first, then the token stops at once.
  await row.getByTestId('revoke-open').click();
  await row.getByTestId('revoke-confirm').click();
  await expect(page.getByTestId('action-result')).toContainText('Token e2e-pipeline');
  await expect(page.locator('tr[data-token="e2e-pipeline"]')).toContainText('revoked');
  const refused = await pipeline.get('/api/v1/me', { headers: { Authorization: `Bearer ${secret}` } });
  expect(refused.status()).toBe(401);
  expect(await refused.json()).toMatchObject({ code: 'invalid_token', detail: 'invalid API token: revoked' });
  await pipeline.dispose();
});
