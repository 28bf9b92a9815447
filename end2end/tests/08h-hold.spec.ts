import type { Browser, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { APP_URL, ENVIRONMENT, USERS } from '../support/constants';
import {
  actionResult,
  deploy,
  environment,
  expectHydrated,
  historyRows,
  expectLive,
  liveVersion,
  SAME_ORIGIN_JSON,
  signIn,
} from '../support/console';

// Issue 17, hold at preview: production holds each deploy after its gates with
// the new release live on the preview address (users still on the old one)
// until a deployer promotes or aborts it. The admin turns the hold on first and
// off again at the end, so later files deploy as before.

async function person(browser: Browser, account: (typeof USERS)[keyof typeof USERS]): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, account);
  return page;
}

async function setHold(page: Page, on: boolean): Promise<void> {
  await page.goto(`/environments/${ENVIRONMENT}/settings`);
  await expectHydrated(page);
  const box = page.getByTestId('hold-at-preview');
  await box.setChecked(on);
  await page.locator('[data-setting="hold_timeout_ms"]').fill('600000');
  await page.getByTestId('save-settings').click();
  await expect(page.getByTestId('action-result').first()).toHaveText('Saved. The next deploy uses these settings.');
  await page.reload();
  await expectHydrated(page);
  if (on) await expect(page.getByTestId('hold-at-preview')).toBeChecked();
  else await expect(page.getByTestId('hold-at-preview')).not.toBeChecked();
}

/** Deploys `version` from the dashboard and opens the held deployment's page. */
async function deployUntilHeld(page: Page, version: string): Promise<void> {
  await page.goto('/');
  await expectHydrated(page);
  const env = environment(page);
  await deploy(env, version);
  await expect(actionResult(env, /held at preview/)).toBeVisible({ timeout: 60_000 });
  await env.getByTestId('held-link').click();
  await expect(page).toHaveURL(/\/deployments\/\d+$/);
  await expectHydrated(page);
  await expect(page.getByTestId('hold').getByRole('heading')).toHaveText('Held at preview');
}

/** What an address answers: `switchyard-demo <version>` → `<version>`. */
async function versionAt(page: Page, url: string): Promise<string> {
  const res = await page.request.get(url, { headers: { 'Cache-Control': 'no-cache' } });
  expect(res.status()).toBe(200);
  return (await res.text()).trim().replace(/^switchyard-demo /, '');
}

test('a held deploy is promoted from its page: the preview first, then users', async ({ browser, request }) => {
  const admin = await person(browser, USERS.admin);
  await setHold(admin, true);

  const before = await liveVersion(request);
  const next = before === 'v3' ? 'v2' : 'v3';
  const dana = await person(browser, USERS.dana);
  await deployUntilHeld(dana, next);
  const hold = dana.getByTestId('hold');
  const preview = (await hold.getByTestId('hold-preview').textContent())!.trim();
  expect(preview).toMatch(/^http:\/\/127\.0\.0\.1:3182\/?$/);
  await expect(hold).toContainText('until');
  await expect(dana.locator('[data-step="hold"]').getByTestId('step-status')).toHaveText('running');

  // The preview serves the new release; users still get the old one.
  expect(await versionAt(dana, preview)).toBe(next);
  expect(await liveVersion(request)).toBe(before);

  // The dashboard says it is held and links it; a viewer sees its panel
  // there without the buttons or the canary form.
  const dashboard = await person(browser, USERS.victor);
  await expect(environment(dashboard).getByTestId('in-progress')).toContainText('held at preview');
  const onDashboard = environment(dashboard).getByTestId('dashboard-hold');
  await expect(onDashboard.getByRole('heading')).toHaveText('Held at preview');
  await expect(onDashboard.getByTestId('hold-promote')).toHaveCount(0);
  await expect(onDashboard.getByTestId('hold-canary-form')).toHaveCount(0);
  // A viewer sees the hold but may not decide it.
  await environment(dashboard).getByTestId('in-progress-link').click();
  await expectHydrated(dashboard);
  await expect(dashboard.getByTestId('hold')).toBeVisible();
  await expect(dashboard.getByTestId('hold-promote')).toHaveCount(0);

  await hold.getByTestId('hold-promote').click();
  await expect(dana.getByTestId('deployment-status')).toHaveText('succeeded', { timeout: 60_000 });
  await expect(dana.getByTestId('hold').getByRole('heading')).toHaveText('Promoted by dana');
  await expectLive(request, next);
});

test('a held deploy is aborted with a reason: users keep their version', async ({ browser, request }) => {
  const live = await liveVersion(request);
  const other = live === 'v3' ? 'v2' : 'v3';
  const dana = await person(browser, USERS.dana);
  await deployUntilHeld(dana, other);
  const hold = dana.getByTestId('hold');
  await hold.getByTestId('hold-abort-open').click();
  await hold.getByTestId('hold-abort-reason').fill('e2e: the preview looks wrong');
  await hold.getByTestId('hold-abort-confirm').click();
  await expect(dana.getByTestId('deployment-status')).toHaveText('failed', { timeout: 60_000 });
  await expect(hold.getByRole('heading')).toHaveText('Aborted by dana: e2e: the preview looks wrong');
  await expect(dana.getByTestId('deployment-message')).toContainText('users stay on');
  await expectLive(request, live);

  // Too late now: refused, nothing changes.
  const id = dana.url().split('/').pop()!;
  const res = await dana.request.post('/api/promote_hold', {
    form: { deployment: id },
    headers: SAME_ORIGIN_JSON,
  });
  expect(res.status()).toBe(409);
  expect(await res.text()).toContain('no longer held');
  await expectLive(request, live);
});

test('a held deploy is decided on the dashboard: testers first, then an abort', async ({ browser, request }) => {
  const live = await liveVersion(request);
  const other = live === 'v3' ? 'v2' : 'v3';
  const dana = await person(browser, USERS.dana);
  await dana.goto('/');
  await expectHydrated(dana);
  const env = environment(dana);
  await deploy(env, other);
  await expect(actionResult(env, /held at preview: promote or abort it below/)).toBeVisible({ timeout: 60_000 });
  const hold = env.getByTestId('dashboard-hold');
  await expect(hold.getByRole('heading')).toHaveText('Held at preview');

  // Testers (a header) reach the held release on the users' address;
  // everyone else keeps the live one.
  await hold.getByTestId('hold-canary-header').fill('X-Tester: e2e');
  await hold.getByTestId('hold-canary-save').click();
  await expect(actionResult(hold, /Canary set/)).toHaveText(
    'Canary set: 0 % of new users, testers with header X-Tester: e2e',
  );
  await expect(hold.getByTestId('hold-canary')).toHaveText('Canary: 0 % of new users, testers with header X-Tester: e2e');
  const tester = await request.get(APP_URL, { headers: { 'X-Tester': 'e2e', 'Cache-Control': 'no-cache' } });
  expect((await tester.text()).trim()).toBe(`switchyard-demo ${other}`);
  expect(await liveVersion(request)).toBe(live);

  // Aborted from the dashboard: the panel goes, users keep their version.
  await hold.getByTestId('hold-abort-open').click();
  await hold.getByTestId('hold-abort-reason').fill('e2e: testers found a bug');
  await hold.getByTestId('hold-abort-confirm').click();
  await expect(env.getByTestId('dashboard-hold')).toHaveCount(0, { timeout: 30_000 });
  await expect(historyRows(env).first()).toContainText('users stay on');
  await expectLive(request, live);
  const after = await request.get(APP_URL, { headers: { 'X-Tester': 'e2e', 'Cache-Control': 'no-cache' } });
  expect((await after.text()).trim()).toBe(`switchyard-demo ${live}`);
});

// Back to deploys without a hold for the files after this one, even when a
// test above failed half-way (a deploy it left held is aborted).
test.afterAll(async ({ browser }) => {
  const admin = await person(browser, USERS.admin);
  const status = await admin.request.post('/api/environment_status', {
    form: { name: ENVIRONMENT },
    headers: SAME_ORIGIN_JSON,
  });
  const lock = ((await status.json()) as { lock?: { deployment_id: number } | null }).lock;
  if (lock) {
    await admin.request.post('/api/abort_hold', {
      form: { deployment: String(lock.deployment_id), reason: 'e2e: clean up after 08h' },
      headers: SAME_ORIGIN_JSON,
    });
  }
  await setHold(admin, false);
  await admin.context().close();
});
