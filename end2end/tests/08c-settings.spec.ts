import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { environment, expectHydrated, SAME_ORIGIN_JSON, signIn } from '../support/console';

test('an admin changes the gates and the next dry run plans with them', async ({ page }) => {
  await signIn(page, USERS.admin);
  await environment(page).getByTestId('settings-link').click();
  await expect(page).toHaveURL(/\/environments\/production\/settings$/);
  await expectHydrated(page);
  const sample = page.locator('[data-setting="sample_requests"]');
  await expect(sample).toHaveValue('50');

  // A malformed number is refused by name and saves nothing.
  await sample.fill('fifty');
  await page.getByTestId('save-settings').click();
  await expect(page.getByTestId('action-error')).toContainText('sample requests: "fifty" is not a whole number');
  await page.reload();
  await expectHydrated(page);
  await expect(sample).toHaveValue('50');

  // Out of range: refused by the engine's checks.
  await page.locator('[data-setting="p95_ms"]').fill('0');
  await page.getByTestId('save-settings').click();
  await expect(page.getByTestId('action-error')).toContainText('latency thresholds must be above 0 ms');

  await page.locator('[data-setting="p95_ms"]').fill('250');
  await sample.fill('20');
  await page.locator('[data-setting="smoke_paths"]').fill('/\n/health');
  await page.getByTestId('save-settings').click();
  await expect(page.getByTestId('action-result')).toHaveText('Saved. The next deploy uses these settings.');
  await page.reload();
  await expectHydrated(page);
  await expect(sample).toHaveValue('20');

  // The dry run describes the gates with the new settings.
  await page.goto('/');
  await expectHydrated(page);
  const env = environment(page);
  const form = env.locator('form.plan');
  await form.getByTestId('plan-version').fill('v3');
  await form.getByRole('button', { name: 'Plan (dry run)' }).click();
  const gates = env.getByTestId('plan').locator('[data-step="gates"]');
  await expect(gates).toContainText('smoke routes /, /health must answer 2xx');
  await expect(gates).toContainText('20 sample requests: p95 < 250 ms');
});

test('a deployer reads the settings but cannot change them', async ({ page }) => {
  await signIn(page, USERS.dana);
  await page.goto('/environments/production/settings');
  await expectHydrated(page);
  await expect(page.locator('[data-setting="sample_requests"]')).toHaveValue('20');
  await expect(page.getByTestId('save-settings')).toHaveCount(0);
  await expect(page.locator('[data-setting="sample_requests"]')).toHaveAttribute('readonly', '');
  const res = await page.request.post('/api/save_pipeline_settings', {
    form: {
      environment: 'production',
      health_interval_ms: '250',
      health_deadline_ms: '5000',
      smoke_paths: '/',
      sample_requests: '1',
      p95_ms: '9999',
      p99_ms: '9999',
      max_error_pct: '100',
      drain_timeout_ms: '1000',
      watch_window_ms: '0',
      standby_window_ms: '0',
    },
    headers: SAME_ORIGIN_JSON,
  });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain('deployer may not change environment settings');
  await page.reload();
  await expect(page.locator('[data-setting="sample_requests"]')).toHaveValue('20');
});

test('an admin sets a variable and a secret; the secret is never shown again', async ({ page }) => {
  const secret = 'e2e-s3cr3t-never-shown';
  await signIn(page, USERS.admin);
  await page.goto('/environments/production/settings');
  await expectHydrated(page);
  const section = page.getByTestId('variables');

  // A name that is not an identifier is refused, naming it.
  const variable = section.getByTestId('set-variable');
  await variable.locator('input[name=name]').fill('MY GREETING');
  await variable.locator('input[name=value]').fill('hello');
  await variable.getByRole('button', { name: 'Set variable' }).click();
  await expect(section.getByTestId('action-error')).toContainText('a letter or _');

  await variable.locator('input[name=name]').fill('GREETING');
  await variable.getByRole('button', { name: 'Set variable' }).click();
  await expect(section.locator('tr[data-variable="GREETING"]')).toContainText('hello');

  const form = section.getByTestId('set-secret');
  await expect(form.locator('input[name=secret]')).toHaveAttribute('type', 'password');
  await form.locator('input[name=name]').fill('API_SECRET');
  await form.locator('input[name=secret]').fill(secret);
  await form.getByRole('button', { name: 'Set secret' }).click();
  const row = section.locator('tr[data-secret="API_SECRET"]');
  await expect(row).toContainText('set (hidden)');
  await expect(row).toContainText('by admin');
  await page.reload();
  await expectHydrated(page);
  expect(await page.content()).not.toContain(secret);

  // Removed again, so later journeys start slots as before.
  await section.locator('tr[data-variable="GREETING"]').getByRole('button', { name: 'Remove' }).click();
  await expect(section.locator('tr[data-variable="GREETING"]')).toHaveCount(0);

  // A viewer sees the settings, not the variables.
  await page.context().clearCookies();
  await signIn(page, USERS.victor);
  await page.goto('/environments/production/settings');
  await expectHydrated(page);
  await expect(page.getByTestId('variables')).toHaveCount(0);
});
