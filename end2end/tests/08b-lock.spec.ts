import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import {
  actionResult,
  deploy,
  environment,
  expectHydrated,
  expectLive,
  liveVersion,
  SAME_ORIGIN_JSON,
  signIn,
} from '../support/console';

// Before 09: production has no checklist yet, so versions deploy directly.

test('an admin breaks the lock of a deploy that hangs; users stay where they were', async ({
  page,
  context,
  request,
}) => {
  await signIn(page, USERS.admin);
  const env = environment(page);
  const live = await liveVersion(request);
  const lockPage = await context.newPage();
  await lockPage.goto('/environments/production/lock');
  await expectHydrated(lockPage);
  await expect(lockPage.getByTestId('lock-free')).toBeVisible();

  // v2+unhealthy never passes its health check: the deploy holds the lock
  // for the whole health deadline (5 s in the suite's server).
  await deploy(env, 'v2+unhealthy');
  await expect(async () => {
    await lockPage.reload();
    await expect(lockPage.getByTestId('lock')).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 4_000 });
  await expectHydrated(lockPage);
  await expect(lockPage.getByTestId('lock-holder')).toContainText('/');
  await expect(lockPage.getByTestId('lock-heartbeat')).toHaveText(/^\d+ s ago$/);

  // Without the explicit confirmation the server refuses.
  await lockPage.getByTestId('break-reason').fill('health never passes, INC-7');
  await lockPage.getByTestId('break-lock').click();
  await expect(lockPage.getByTestId('action-error')).toContainText('confirm that you want to break the lock');

  await lockPage.getByTestId('break-confirm').check();
  await lockPage.getByTestId('break-lock').click();
  await expect(lockPage.getByTestId('action-result')).toContainText(
    /^Lock broken\. Deployment #\d+ failed: lock broken by admin: health never passes, INC-7; the (blue|green) slot it started was stopped/,
  );
  await expect(lockPage.getByTestId('lock-free')).toBeVisible();

  // The deploy's own answer says why it ended, and users never moved.
  await expect(actionResult(env, /^deploy #\d+/)).toHaveText(/failed: lock broken by admin: health never passes/, {
    timeout: 15_000,
  });
  await expectLive(request, live);
});

test('a viewer sees the lock page but no way to break it', async ({ page }) => {
  await signIn(page, USERS.victor);
  await page.goto('/environments/production/lock');
  await expectHydrated(page);
  await expect(page.getByTestId('lock-free')).toBeVisible();
  await expect(page.getByTestId('break-lock')).toHaveCount(0);
  // And the server refuses the form's endpoint whatever the page shows.
  const res = await page.request.post('/api/break_lock', {
    form: { environment: 'production', deployment: '1', reason: 'forged', confirm: 'on' },
    headers: SAME_ORIGIN_JSON,
  });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain('viewer may not break a deployment lock');
});
