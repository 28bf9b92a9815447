import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import {
  deploymentIds,
  environment,
  expectLive,
  historyRows,
  liveVersion,
  SAME_ORIGIN_JSON,
  signIn,
  slot,
} from '../support/console';

test('viewer sees slots and history but no way to change them', async ({ page }) => {
  await signIn(page, USERS.victor);
  const env = environment(page);

  for (const color of ['blue', 'green'] as const) {
    await expect(slot(env, color).getByTestId('slot-marker')).toHaveText(/^(active|standby|idle)$/);
    await expect(slot(env, color).getByTestId('slot-version')).toBeVisible();
    await expect(slot(env, color).getByTestId('slot-state')).toBeVisible();
  }
  await expect(env.getByTestId('slot-marker').filter({ hasText: /^active$/ })).toHaveCount(1);
  await expect(env.getByTestId('app-url')).toBeVisible();
  await expect(env.getByTestId('history')).toBeVisible();
  expect(await historyRows(env).count()).toBeGreaterThan(0);

  await expect(env.getByText('Your role can view this environment but not change it.')).toBeVisible();
  await expect(env.getByRole('button', { name: 'Deploy', exact: true })).toHaveCount(0);
  await expect(env.getByRole('button', { name: 'Roll back' })).toHaveCount(0);
  await expect(env.getByTestId('deploy-version')).toHaveCount(0);
  await expect(env.getByTestId('rollback-reason')).toHaveCount(0);
});

test("server refuses a viewer's direct deploy and rollback", async ({ page, request }) => {
  await signIn(page, USERS.victor);
  const live = await liveVersion(request);
  const before = await deploymentIds(page);

  const deployRes = await page.request.post('/api/deploy', {
    form: { environment: 'production', version: live === 'v2' ? 'v3' : 'v2' },
    headers: SAME_ORIGIN_JSON,
  });
  const deployBody = await deployRes.text();
  expect(deployRes.ok(), deployBody).toBe(false);
  expect(deployBody).toContain('viewer may not deploy');

  const rollbackRes = await page.request.post('/api/rollback', {
    form: { environment: 'production', reason: 'viewer tries anyway' },
    headers: SAME_ORIGIN_JSON,
  });
  const rollbackBody = await rollbackRes.text();
  expect(rollbackRes.ok(), rollbackBody).toBe(false);
  expect(rollbackBody).toContain('viewer may not');

  await expectLive(request, live);
  expect(await deploymentIds(page)).toEqual(before);
});

test('a cross-origin POST is refused with 403, even with a deployer session', async ({ page, request }) => {
  await signIn(page, USERS.dana);
  const live = await liveVersion(request);
  const before = await deploymentIds(page);

  const res = await page.request.post('/api/deploy', {
    form: { environment: 'production', version: live === 'v2' ? 'v3' : 'v2' },
    headers: { Accept: 'application/json', Origin: 'http://evil.example' },
  });
  expect(res.status(), await res.text()).toBe(403);

  await expectLive(request, live);
  expect(await deploymentIds(page)).toEqual(before);
});
