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
