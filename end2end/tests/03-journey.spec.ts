import { expect, test } from '@playwright/test';
import { USERS } from '../support/constants';
import {
  actionResult,
  COL,
  deploy,
  environment,
  expectLive,
  historyRow,
  rollBack,
  signIn,
  slot,
} from '../support/console';

function idOf(text: string): number {
  const m = /#(\d+)/.exec(text);
  if (!m) throw new Error(`no deployment number in ${JSON.stringify(text)}`);
  return Number(m[1]);
}

// The acceptance test. The server starts with v1 live on blue.
test('deployer ships v2 to users, then rolls back to v1 with a reason', async ({ page, request }) => {
  const reason = `e2e: checkout errors after v2 (${Date.now()})`;

  await signIn(page, USERS.dana);
  const env = environment(page);
  const blue = slot(env, 'blue');
  const green = slot(env, 'green');

  await test.step('v1 is live on blue', async () => {
    await expectLive(request, 'v1');
    await expect(blue.getByTestId('slot-marker')).toHaveText('active');
    await expect(blue.getByTestId('slot-version')).toHaveText('v1');
    await expect(env.getByTestId('app-url')).toHaveAttribute('href', 'http://127.0.0.1:3180/');
  });

  let deployId = 0;
  await test.step('deploy v2', async () => {
    // The pending state can be short: record it as it happens instead of polling for it.
    await env.locator('form.deploy button[type=submit]').evaluate((button) => {
      const w = window as unknown as { __e2eSawDeploying?: boolean };
      w.__e2eSawDeploying = false;
      new MutationObserver(() => {
        const b = button as HTMLButtonElement;
        if (b.textContent?.trim() === 'Deploying…' && b.disabled) w.__e2eSawDeploying = true;
      }).observe(button, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    await deploy(env, 'v2');
    const result = actionResult(env, /^deploy #\d+/);
    await expect(result).toHaveText(/^deploy #\d+ succeeded: v2 is live on green; blue kept warm as standby$/, {
      timeout: 30_000,
    });
    deployId = idOf((await result.textContent()) ?? '');
    await expect(env.getByRole('button', { name: 'Deploy', exact: true })).toBeEnabled();
    expect(
      await page.evaluate(() => (window as unknown as { __e2eSawDeploying?: boolean }).__e2eSawDeploying),
      'the button said "Deploying…" (disabled) while the deploy ran',
    ).toBe(true);
  });

  await test.step('users get v2; green is active, blue standby', async () => {
    await expectLive(request, 'v2');
    await expect(green.getByTestId('slot-marker')).toHaveText('active');
    await expect(green.getByTestId('slot-version')).toHaveText('v2');
    await expect(green.getByTestId('slot-state')).toHaveText('healthy');
    await expect(blue.getByTestId('slot-marker')).toHaveText('standby');
    await expect(blue.getByTestId('slot-version')).toHaveText('v1');
    // The standby window (15 minutes by default) is shown on the standby.
    await expect(blue.getByTestId('slot-standby')).toHaveText(/^warm until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    await expect(green.getByTestId('slot-standby')).toHaveCount(0);
  });

  await test.step("the traffic panel counts the users' requests on green", async () => {
    // expectLive just asked the app through switchyard-proxy: the newest
    // 10-second point of green's chart has answers; the panel refreshes every 2 s.
    const greenTraffic = env.locator('[data-traffic-slot="green"]');
    await expect(greenTraffic.getByTestId('traffic-rps').getByTestId('chart-now')).toHaveText(/^\d+\.\d\/s$/);
    await expect(greenTraffic.getByTestId('traffic-rps').getByTestId('chart-now')).not.toHaveText('0/s');
    await expect(greenTraffic.getByTestId('traffic-errors').getByTestId('chart-now')).toHaveText('0.0 %');
    await expect(greenTraffic.locator('svg polyline')).toHaveCount(3);
  });

  let rollbackId = 0;
  await test.step('roll back with a reason', async () => {
    await rollBack(env, reason);
    const result = actionResult(env, /^rollback #\d+/);
    await expect(result).toHaveText(/^rollback #\d+ succeeded: /);
    rollbackId = idOf((await result.textContent()) ?? '');
    expect(rollbackId).toBeGreaterThan(deployId);
  });

  await test.step('users get v1 again; blue is active, green standby', async () => {
    await expectLive(request, 'v1');
    await expect(blue.getByTestId('slot-marker')).toHaveText('active');
    await expect(green.getByTestId('slot-marker')).toHaveText('standby');
  });

  await test.step('history lists the deploy and the rollback, by dana', async () => {
    const deployCells = historyRow(env, deployId).locator('td');
    await expect(deployCells.nth(COL.kind)).toHaveText('deploy');
    await expect(deployCells.nth(COL.status)).toHaveText('succeeded');
    await expect(deployCells.nth(COL.versions)).toHaveText('v1 → v2');
    await expect(deployCells.nth(COL.who)).toHaveText('dana');

    const rollbackCells = historyRow(env, rollbackId).locator('td');
    await expect(rollbackCells.nth(COL.kind)).toHaveText('rollback');
    await expect(rollbackCells.nth(COL.status)).toHaveText('succeeded');
    await expect(rollbackCells.nth(COL.versions)).toHaveText('v2 → v1');
    await expect(rollbackCells.nth(COL.who)).toHaveText('dana');
    await expect(rollbackCells.nth(COL.details)).toContainText(reason);
  });

  await test.step("the deploy's page shows its steps, each succeeded", async () => {
    await historyRow(env, deployId).getByTestId('deployment-link').click();
    await expect(page).toHaveURL(new RegExp(`/deployments/${deployId}$`));
    await expect(page.getByTestId('deployment-status')).toHaveText('succeeded');
    await expect(page.getByTestId('deployment-versions')).toContainText('v1');
    await expect(page.getByTestId('deployment-versions')).toContainText('v2');
    const steps = page.getByTestId('steps').getByTestId('step');
    await expect(steps).toHaveCount(8);
    expect(await steps.evaluateAll((li) => li.map((e) => e.getAttribute('data-step')))).toEqual([
      'lock',
      'preflight',
      'start',
      'health',
      'gates',
      'switch',
      'drain',
      'standby',
    ]);
    for (const status of await steps.getByTestId('step-status').allTextContents()) {
      expect(status).toBe('succeeded');
    }
    // The gates step says what it measured on the idle slot.
    await expect(page.locator('[data-step="gates"]')).toContainText(/smoke \/ 200; 50 requests to \/: p95 [\d.]+ ms/);
    await expect(page.getByTestId('deployment-live')).toHaveCount(0);
    // The deploy was watched after its switch; dana's rollback ended the watch.
    await expect(page.getByTestId('watch-status')).toHaveText('stopped');
    await expect(page.getByTestId('watch-message')).toContainText('ended early: traffic moved');
  });
});
