import type { Locator } from '@playwright/test';
import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import {
  actionResult,
  COL,
  deploy,
  deploymentIds,
  environment,
  expectLive,
  historyRow,
  historyRows,
  liveVersion,
  rollBack,
  signIn,
  slot,
} from '../support/console';

/** The slot users are on, as the dashboard shows it. */
async function activeColor(env: Locator): Promise<'blue' | 'green'> {
  let color: 'blue' | 'green' | undefined;
  await expect(async () => {
    // textContent, not innerText: the marker is styled (text-transform).
    const blue = ((await slot(env, 'blue').getByTestId('slot-marker').textContent()) ?? '').trim();
    const green = ((await slot(env, 'green').getByTestId('slot-marker').textContent()) ?? '').trim();
    expect([blue, green].filter((m) => m === 'active'), 'exactly one active slot').toHaveLength(1);
    color = blue === 'active' ? 'blue' : 'green';
  }).toPass();
  return color!;
}

// A refusal must leave no trace in the history: wait for one status refresh (2 s)
// and compare with what the server holds.
async function expectNoNewDeployment(env: Locator, before: number[]): Promise<void> {
  const page = env.page();
  expect(await deploymentIds(page)).toEqual(before);
  await page.waitForTimeout(2_500);
  await expect(historyRows(env)).toHaveCount(before.length);
}

test.describe('deployer mistakes are refused clearly', () => {
  test.beforeEach(async ({ page }) => {
    await signIn(page, USERS.dana);
  });

  test('empty version is refused and adds no history row', async ({ page, request }) => {
    const env = environment(page);
    const live = await liveVersion(request);
    const before = await deploymentIds(page);

    await deploy(env, '');
    await expect(actionResult(env, 'version is required')).toBeVisible();
    await expectNoNewDeployment(env, before);
    await expectLive(request, live);
  });

  test('unknown version v9 is refused', async ({ page, request }) => {
    const env = environment(page);
    const live = await liveVersion(request);
    const before = await deploymentIds(page);

    await deploy(env, 'v9');
    await expect(actionResult(env, /^unknown version v9: /)).toBeVisible();
    await expectNoNewDeployment(env, before);
    await expectLive(request, live);
  });

  test('rolling back without a reason is refused', async ({ page, request }) => {
    const env = environment(page);
    const live = await liveVersion(request);
    const before = await deploymentIds(page);

    await rollBack(env, '');
    await expect(actionResult(env, 'a reason is required to roll back')).toBeVisible();

    // Blanks are no reason either.
    await page.reload();
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await rollBack(env, '   ');
    await expect(actionResult(env, 'a reason is required to roll back')).toBeVisible();

    await expectNoNewDeployment(env, before);
    await expectLive(request, live);
  });

  test('a release that never gets healthy fails and users stay where they were', async ({ page, request }) => {
    const env = environment(page);
    const live = await liveVersion(request);
    const color = await activeColor(env);

    await deploy(env, 'v2+unhealthy');
    const result = actionResult(env, /^deploy #\d+/);
    // 5 s health deadline plus starting and stopping the slot.
    await expect(result).toHaveText(/^deploy #\d+ failed: .*health/i, { timeout: 30_000 });
    const id = Number(/#(\d+)/.exec((await result.textContent()) ?? '')![1]);

    await expectLive(request, live);
    await expect(slot(env, color).getByTestId('slot-marker')).toHaveText('active');
    await expect(slot(env, color).getByTestId('slot-version')).toHaveText(live);

    const cells = historyRow(env, id).locator('td');
    await expect(cells.nth(COL.kind)).toHaveText('deploy');
    await expect(cells.nth(COL.status)).toHaveText('failed');
    await expect(cells.nth(COL.versions)).toHaveText(`${live} → v2+unhealthy`);
    await expect(cells.nth(COL.who)).toHaveText('dana');
    await expect(cells.nth(COL.details)).toContainText(/health/i);
    // The slot it used held the standby: the rollback now says it has none.
    await expect(env.getByTestId('rollback-open')).toHaveText('Roll back (no standby)');
    await env.getByTestId('rollback-open').click();
    await expect(env.getByTestId('rollback-plan')).toContainText('holds v2+unhealthy, which is not running');
    await expect(env.getByTestId('rollback-confirm')).toBeDisabled();
  });

  test('a release that answers errors fails its gates before any user reaches it', async ({ page, request }) => {
    const env = environment(page);
    const live = await liveVersion(request);
    const color = await activeColor(env);

    await deploy(env, 'v2+errors');
    const result = actionResult(env, /^deploy #\d+/);
    await expect(result).toHaveText(/^deploy #\d+ failed: .*gates/i, { timeout: 30_000 });
    const id = Number(/#(\d+)/.exec((await result.textContent()) ?? '')![1]);

    await expectLive(request, live);
    await expect(slot(env, color).getByTestId('slot-marker')).toHaveText('active');

    // The deployment's page says which gate failed and with which figures.
    await historyRow(env, id).getByTestId('deployment-link').click();
    await expect(page).toHaveURL(new RegExp(`/deployments/${id}$`));
    await expect(page.getByTestId('deployment-status')).toHaveText('failed');
    const gates = page.locator('[data-step="gates"]');
    await expect(gates.getByTestId('step-status')).toHaveText('failed');
    await expect(gates.getByTestId('step-message')).toContainText('errors 50.0 % = 25/50 (limit < 1.0 %)');
    await expect(page.locator('[data-step="switch"]').getByTestId('step-status')).toHaveText('skipped');
  });

  test('a dry run shows the plan and what blocks it, and changes nothing', async ({ page, request }) => {
    const env = environment(page);
    const live = await liveVersion(request);
    const before = await deploymentIds(page);
    const form = env.locator('form.plan');

    await form.getByTestId('plan-version').fill('v3');
    await form.getByRole('button', { name: 'Plan (dry run)' }).click();
    const plan = env.getByTestId('plan');
    await expect(plan).toHaveAttribute('data-ready', 'true');
    await expect(plan.getByTestId('plan-step')).toHaveCount(9);
    await expect(plan.locator('[data-step="switch"]')).toContainText(`(${live}) to `);
    await expect(plan.locator('[data-step="switch"]')).toContainText('(v3) in one atomic switch');
    await expect(plan.getByTestId('plan-blockers').locator('li')).toHaveCount(0);

    await form.getByTestId('plan-version').fill('v9');
    await form.getByRole('button', { name: 'Plan (dry run)' }).click();
    await expect(plan).toHaveAttribute('data-ready', 'false');
    await expect(plan.getByTestId('plan-blockers')).toContainText('unknown version v9: ');

    await expectNoNewDeployment(env, before);
    await expectLive(request, live);
  });

});
