import type { Browser, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { ENVIRONMENT, USERS } from '../support/constants';
import { actionResult, deploy, environment, expectHydrated, liveVersion, SAME_ORIGIN_JSON, signIn } from '../support/console';

// Issue 17, freeze windows: an admin adds a window covering now on the settings
// page; a deployer's deploy is refused with its reason (a rollback is not
// refused by it); the admin deletes it again so later files deploy as before.

const REASON = 'e2e holiday freeze';

async function person(browser: Browser, account: (typeof USERS)[keyof typeof USERS]): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, account);
  return page;
}

test('a freeze window refuses deploys with its reason until an admin deletes it', async ({ browser, request }) => {
  const admin = await person(browser, USERS.admin);
  await admin.goto(`/environments/${ENVIRONMENT}/settings`);
  await expectHydrated(admin);
  const section = admin.getByTestId('freeze-windows');
  await expect(section.getByTestId('no-freezes')).toBeVisible();
  const form = section.getByTestId('add-freeze');

  // A time that does not parse is refused, naming the field; nothing is added.
  await form.getByTestId('freeze-reason-input').fill(REASON);
  await form.getByTestId('freeze-kind').selectOption('once');
  await form.getByTestId('freeze-starts').fill('someday');
  await form.getByTestId('freeze-ends').fill('2999-01-01 00:00');
  await form.getByTestId('freeze-add').click();
  await expect(section.getByTestId('action-error')).toContainText('starts');
  await expect(section.getByTestId('no-freezes')).toBeVisible();

  await form.getByTestId('freeze-starts').fill('2000-01-01 00:00');
  await form.getByTestId('freeze-zone').fill('UTC');
  await form.getByTestId('freeze-add').click();
  await expect(section.getByTestId('action-result')).toContainText('Freeze window added');
  const row = section.getByTestId('freezes').locator('tbody tr');
  await expect(row).toHaveCount(1);
  await expect(row.getByTestId('freeze-reason')).toHaveText(REASON);
  await expect(row.getByTestId('freeze-status')).toContainText('holds now, until');

  // The deployer sees the freeze on the dashboard; a deploy is refused naming it.
  const live = await liveVersion(request);
  const dana = await person(browser, USERS.dana);
  const env = environment(dana);
  await expect(env.getByTestId('frozen')).toContainText(REASON);
  await expect(env.getByTestId('frozen')).toContainText('until 2999-01-01');
  await deploy(env, live === 'v3' ? 'v2' : 'v3');
  await expect(actionResult(env, /frozen/)).toContainText(REASON);
  expect(await liveVersion(request)).toBe(live);
  // A rollback is never refused by a freeze (it may have no standby to go to).
  const back = await dana.request.post('/api/rollback', {
    form: { environment: ENVIRONMENT, reason: 'e2e: rollbacks go through a freeze' },
    headers: SAME_ORIGIN_JSON,
  });
  expect(await back.text()).not.toContain('frozen');

  // The admin deletes it, behind a confirmation.
  await row.getByTestId('freeze-delete-open').click();
  await row.getByTestId('freeze-delete-confirm').click();
  await expect(section.getByTestId('no-freezes')).toBeVisible();
  await dana.reload();
  await expectHydrated(dana);
  await expect(environment(dana).getByTestId('frozen')).toHaveCount(0);
});
