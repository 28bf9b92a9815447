import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { actionResult, deploy, environment, expectHydrated, rollBack, SAME_ORIGIN_JSON, signIn } from '../support/console';

// An admin onboards a Docker service from the Environments page: a bad field
// is refused by name and creates nothing; the service is created, edited and
// archived; the release form suggests the versions a runtime knows.
test('an admin creates, edits and archives an environment in the browser', async ({ page, browser }) => {
  await signIn(page, USERS.admin);
  await page.getByTestId('nav-environments').click();
  await expect(page).toHaveURL(/\/environments$/);
  await expectHydrated(page);
  await expect(page.locator('[data-environment="production"]')).toBeVisible();

  const create = page.getByTestId('create-environment');
  await create.locator('[data-field="name"]').fill('catalog');
  await create.locator('[data-field="artifact"]').fill('127.0.0.1:5055/catalog:latest');
  await create.locator('[data-field="app_url"]').fill('http://127.0.0.1:8390/');
  await create.locator('[data-field="admin_url"]').fill('http://127.0.0.1:8391');
  await create.locator('[data-field="memory_mb"]').fill('128');
  await page.getByTestId('create-environment-submit').click();
  await expect(page.getByTestId('action-error')).toContainText('does not hold {version}');
  await expect(page.locator('[data-environment="catalog"]')).toHaveCount(0);

  await create.locator('[data-field="artifact"]').fill('127.0.0.1:5055/catalog:{version}');
  await page.getByTestId('create-environment-submit').click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'Environment catalog created' })).toBeVisible();
  const row = page.locator('[data-environment="catalog"]');
  await expect(row).toContainText('127.0.0.1:5055/catalog:{version}');

  await row.getByRole('link', { name: 'catalog' }).click();
  await expect(page).toHaveURL(/\/environments\/catalog$/);
  await expectHydrated(page);
  const edit = page.getByTestId('edit-environment');
  await expect(edit.locator('[data-field="memory_mb"]')).toHaveValue('128');
  await edit.locator('[data-field="health_path"]').fill('/ready');
  await edit.locator('[data-field="port"]').fill('9090');
  await page.getByTestId('edit-environment-submit').click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'Saved' })).toContainText('health_path');
  await page.reload();
  await expectHydrated(page);
  await expect(page.getByTestId('edit-environment').locator('[data-field="port"]')).toHaveValue('9090');

  // The release form suggests the demo's release directories.
  await page.goto('/releases');
  await expectHydrated(page);
  await expect(page.locator('datalist[data-versions-of="production"] option[value="v3"]')).toHaveCount(1);
  // Its suggestions follow the environment chosen.
  const version = page.getByTestId('request-version');
  await page.getByTestId('request-environment').selectOption('catalog');
  await expect(version).toHaveAttribute('list', 'versions-catalog');
  await page.getByTestId('request-environment').selectOption('production');
  await expect(version).toHaveAttribute('list', 'versions-production');

  // A viewer is refused the page and its actions, even called directly.
  const viewer = await browser.newContext();
  const vpage = await viewer.newPage();
  await signIn(vpage, USERS.victor);
  const refused = await vpage.request.post('/api/archive_environment', {
    form: { environment: 'catalog', confirm: 'on' },
    headers: SAME_ORIGIN_JSON,
  });
  expect(refused.status()).toBe(403);
  await viewer.close();

  await page.goto('/environments/catalog');
  await expectHydrated(page);
  await page.getByTestId('archive-environment').getByRole('button', { name: 'Archive' }).click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'catalog archived' })).toBeVisible();
  await expect(page.locator('[data-archived="catalog"]')).toContainText('by admin');
  await expect(page.locator('[data-environment="catalog"]')).toHaveCount(0);
});

/** The registry scripts/registry.sh runs, with its login. */
const REGISTRY_DIR = process.env.SWITCHYARD_REGISTRY_DIR ?? '/tmp/switchyard-registry';
const REGISTRY = fs.readFileSync(path.join(REGISTRY_DIR, 'address'), 'utf8').trim();
const registryUser = () => fs.readFileSync(path.join(REGISTRY_DIR, 'user'), 'utf8').trim();
const registryPassword = () => fs.readFileSync(path.join(REGISTRY_DIR, 'password'), 'utf8').trim();

/** What users of the onboarded service get (its own switchyard-proxy). */
const SHOP_URL = 'http://127.0.0.1:3190/';

async function shopServes(request: import('@playwright/test').APIRequestContext): Promise<string> {
  const res = await request.get(SHOP_URL, { headers: { 'Cache-Control': 'no-cache' } });
  return (await res.text()).trim();
}

// The done-when journey of issue 14, on Docker: an admin onboards "shop" in
// the browser (its images in the loopback registry, pulled with a login set
// in the browser), a deployer deploys v1 then v2, reads the new slot's output
// and rolls back; v2 is promoted to shop-live; the admin archives both.
test('an admin onboards a Docker service; a deployer ships, reads logs and rolls back', async ({
  page,
  request,
}) => {
  test.setTimeout(120_000);
  await signIn(page, USERS.admin);
  await page.goto('/environments');
  await expectHydrated(page);
  const create = page.getByTestId('create-environment');
  await create.locator('[data-field="name"]').fill('shop');
  await create.locator('[data-field="artifact"]').fill(`${REGISTRY}/shop:{version}`);
  await create.locator('[data-field="app_url"]').fill(SHOP_URL);
  await create.locator('[data-field="admin_url"]').fill('http://127.0.0.1:3191');
  await create.locator('[data-field="checklist"]').selectOption('empty');
  // The registry login its pulls use, given with the create: the password
  // is stored as the secret REGISTRY_PASSWORD and never shown again.
  const newLogin = create.getByTestId('new-registry-login');
  await newLogin.locator('[data-field="registry_user"]').fill(registryUser());
  await newLogin.locator('[data-field="registry_password"]').fill(registryPassword());
  await page.getByTestId('create-environment-submit').click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'Environment shop created' })).toBeVisible();
  await page.goto('/environments/shop');
  await expectHydrated(page);
  const login = page.getByTestId('registry-login');
  await expect(login.locator('[data-field="registry_user"]')).toHaveValue(registryUser());
  await expect(login.locator('[data-field="registry_password_secret"]')).toHaveValue('REGISTRY_PASSWORD');
  expect(await page.content()).not.toContain(registryPassword());
  await page.goto('/environments/shop/settings');
  await expectHydrated(page);
  await expect(page.locator('tr[data-secret="REGISTRY_PASSWORD"]')).toContainText('set (hidden)');
  // Its production: releases must have succeeded in shop first.
  await page.goto('/environments');
  await expectHydrated(page);
  await create.locator('[data-field="name"]').fill('shop-live');
  await create.locator('[data-field="artifact"]').fill('switchyard-demo:{version}');
  await create.locator('[data-field="app_url"]').fill('http://127.0.0.1:3195/');
  await create.locator('[data-field="admin_url"]').fill('http://127.0.0.1:3196');
  await create.locator('[data-field="upstream"]').fill('shop');
  await page.getByTestId('create-environment-submit').click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'Environment shop-live created' })).toBeVisible();

  await page.context().clearCookies();
  await signIn(page, USERS.dana);
  const shop = environment(page, 'shop');
  await deploy(shop, 'v1');
  await expect(actionResult(shop, /^deploy #\d+/)).toHaveText(/succeeded: v1 is live on blue/, { timeout: 45_000 });
  await expect.poll(() => shopServes(request)).toBe('switchyard-demo v1');
  await page.reload();
  await expectHydrated(page);
  // The idle slot's output is open before v2 lands there: it follows live,
  // without a reload, as the new container starts printing.
  await environment(page, 'shop').getByTestId('show-output-green').click();
  const output = environment(page, 'shop').getByTestId('slot-output');
  await expect(output).toHaveAttribute('data-slot', 'green');
  await expect(output).not.toContainText('switchyard-demo v2');
  await deploy(environment(page, 'shop'), 'v2');
  await expect(actionResult(environment(page, 'shop'), /^deploy #\d+/)).toHaveText(/succeeded: v2 is live on green/, {
    timeout: 45_000,
  });
  await expect.poll(() => shopServes(request)).toBe('switchyard-demo v2');
  const shipped = /^deploy #(\d+)/.exec((await actionResult(environment(page, 'shop'), /^deploy #\d+/).textContent()) ?? '')![1];

  // The new slot's container output: the image listens on every interface.
  await expect(output).toHaveAttribute('data-slot', 'green');
  await expect(output).toContainText(/switchyard-demo v2 listening on 0\.0\.0\.0:8080/);

  await page.reload();
  await expectHydrated(page);
  await rollBack(environment(page, 'shop'), 'e2e: back to v1');
  await expect(actionResult(environment(page, 'shop'), /^rollback #\d+/)).toHaveText(/succeeded/, { timeout: 30_000 });
  await expect.poll(() => shopServes(request)).toBe('switchyard-demo v1');

  // Promotion: the succeeded v2 deploy offers shop-live; the release it
  // requests has its "succeeded upstream" item verified from history.
  await page.goto(`/deployments/${shipped}`);
  await expectHydrated(page);
  await page.getByTestId('promotions').getByRole('button', { name: 'Promote to shop-live' }).click();
  await expect(page).toHaveURL(/\/releases\/\d+$/);
  await expect(page.locator('[data-item="Staging deployment successful"]').getByTestId('item-state')).toHaveText('verified');
  await expect(page.getByTestId('release-status')).toHaveText('awaiting sign-off');

  await page.context().clearCookies();
  await signIn(page, USERS.admin);
  await page.goto('/environments/shop-live');
  await expectHydrated(page);
  await page.getByTestId('archive-environment').getByRole('button', { name: 'Archive' }).click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'shop-live archived' })).toBeVisible();
  await page.goto('/environments/shop');
  await expectHydrated(page);
  const archive = page.getByTestId('archive-environment');
  await archive.getByRole('button', { name: 'Archive' }).click();
  await expect(page.getByTestId('action-error')).toContainText('still serves users');
  await archive.locator('[data-field="confirm"]').check();
  await archive.getByRole('button', { name: 'Archive' }).click();
  await expect(page.getByTestId('action-result').filter({ hasText: 'shop archived' })).toBeVisible();
  await expect.poll(async () => (await request.get(SHOP_URL).catch(() => null))?.status() ?? 0).not.toBe(200);
});
