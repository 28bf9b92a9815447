import type { Browser, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { USERS, type Account } from '../support/constants';
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

/** A signed-in page in its own browser context: separate cookies, separate person. */
async function person(browser: Browser, account: Account): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, account);
  return page;
}

function item(page: Page, title: string) {
  return page.locator(`li[data-item="${title}"]`);
}

async function openRelease(page: Page, id: string): Promise<void> {
  await page.goto(`/releases/${id}`);
  await expectHydrated(page);
  await expect(page.getByTestId('checklist')).toBeVisible();
}

async function sign(page: Page, title: string, note: string): Promise<void> {
  const row = item(page, title);
  await row.getByTestId('sign-note').fill(note);
  await row.getByTestId('sign').click();
  await expect(row.getByTestId('item-state')).toHaveText('signed');
  await expect(row.getByTestId('signoff')).toContainText(note);
}

const APPROVER_ITEMS = ['Code reviewed', 'Tests passing', 'Monitoring ready'];

test('a version succeeds in staging, is promoted, signed by two approvers and deployed', async ({ browser, request }) => {
  // The admin gives production the default checklist from its page.
  const admin = await person(browser, USERS.admin);
  await admin.goto('/environments/production/checklist');
  await expectHydrated(admin);
  await admin.getByTestId('checklist-reset').click();
  await expect(admin.getByTestId('template').locator('tr[data-item="Code reviewed"]')).toBeVisible();

  const live = await liveVersion(request);
  const next = live === 'v3' ? 'v2' : 'v3';

  // dana (deployer) tries the version in staging first (no checklist there),
  // then promotes the succeeded deploy: that requests the production release.
  const dana = await person(browser, USERS.dana);
  const staging = environment(dana, 'staging');
  await deploy(staging, next);
  const staged = actionResult(staging, /^deploy #\d+/);
  await expect(staged).toHaveText(new RegExp(`succeeded: ${next.replace('+', '\\+')} is live`), { timeout: 30_000 });
  const stagedId = /^deploy #(\d+)/.exec((await staged.textContent()) ?? '')![1];
  // Users of production still get what they had.
  await expectLive(request, live);
  await dana.goto(`/deployments/${stagedId}`);
  await expectHydrated(dana);
  await dana.getByTestId('promotions').getByRole('button', { name: 'Promote to production' }).click();
  await expect(dana).toHaveURL(/\/releases\/\d+$/);
  const releaseId = dana.url().split('/').pop()!;
  await expect(item(dana, 'Staging deployment successful').getByTestId('item-state')).toHaveText('verified');
  // The release carries its migration: dana adds it (nobody has signed yet).
  await dana.getByTestId('edit-sql').fill(
    "ALTER TABLE customers ADD COLUMN processing_started_at TIMESTAMP DEFAULT NULL;",
  );
  await dana.getByTestId('edit-submit').click();
  await expect(dana.getByTestId('release-revision')).toHaveText('2');
  await expect(dana.getByTestId('release-status')).toHaveText('awaiting sign-off');
  await expect(item(dana, 'Migrations additive-only').getByTestId('item-state')).toHaveText('verified');
  await expect(dana.getByTestId('not-deployable')).toBeVisible();
  // The requester is offered no signature, and the server refuses a forced one.
  await expect(dana.getByTestId('sign')).toHaveCount(0);
  const itemId = await dana.evaluate(async (id) => {
    const res = await fetch('/api/load_release', {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `id=${id}`,
    });
    const page = await res.json();
    return page.release.items.find((i: { title: string }) => i.title === 'Rollback plan confirmed').id;
  }, releaseId);
  const own = await dana.request.post('/api/sign_item', {
    form: { release: releaseId, item: String(itemId), revision: '2', note: 'trust me' },
    headers: SAME_ORIGIN_JSON,
  });
  expect(own.status()).toBe(403);
  expect(await own.text()).toContain('four-eyes');

  // alice and bob (approvers) sign in their own browsers.
  const alice = await person(browser, USERS.alice);
  await openRelease(alice, releaseId);
  await sign(alice, APPROVER_ITEMS[0], 'reviewed PR 1234');
  await sign(alice, APPROVER_ITEMS[1], 'CI run 987 green');
  // Approvers do not deploy.
  await expect(alice.getByTestId('deploy-release')).toHaveCount(0);

  const bob = await person(browser, USERS.bob);
  await openRelease(bob, releaseId);
  // alice's signatures are there, with her name.
  await expect(item(bob, 'Code reviewed').getByTestId('signoff')).toContainText('Signed by alice');
  await expect(item(bob, 'Code reviewed').getByTestId('sign')).toHaveCount(0);
  await sign(bob, APPROVER_ITEMS[2], 'dashboards open');
  await sign(bob, 'Rollback plan confirmed', 'v1 stays warm, runbook read');
  await expect(bob.getByTestId('release-status')).toHaveText('approved');

  // dana deploys; users get the new version.
  await openRelease(dana, releaseId);
  await expect(dana.getByTestId('release-status')).toHaveText('approved');
  await dana.getByTestId('deploy-release').click();
  await expect(dana.getByTestId('action-result')).toContainText(/deployment #\d+ succeeded/, { timeout: 30_000 });
  await expectLive(request, next);

  // It is on record: the release page and the audit log.
  await openRelease(alice, releaseId);
  await expect(alice.getByText(/Deployment #\d+: succeeded/)).toBeVisible();
  await alice.goto('/audit?action=release.sign');
  await expectHydrated(alice);
  await expect(alice.locator('table.audit tbody tr').filter({ hasText: 'bob' }).first()).toBeVisible();

  for (const p of [admin, dana, alice, bob]) await p.context().close();
});

test('an edit voids the signatures and a stale form is refused', async ({ browser }) => {
  const dana = await person(browser, USERS.dana);
  await dana.goto('/releases');
  await expectHydrated(dana);
  await dana.getByTestId('request-environment').selectOption('production');
  await dana.getByTestId('request-version').fill('v2');
  await dana.getByTestId('request-submit').click();
  await expect(dana).toHaveURL(/\/releases\/\d+$/);
  const releaseId = dana.url().split('/').pop()!;

  // alice loads the page (revision 1) and signs one item.
  const alice = await person(browser, USERS.alice);
  await openRelease(alice, releaseId);
  await sign(alice, 'Code reviewed', 'looked at it');

  // dana edits the release: revision 2, alice's signature is void.
  await openRelease(dana, releaseId);
  await dana.getByTestId('edit-sql').fill('ALTER TABLE customers DROP COLUMN phone;');
  await dana.getByTestId('edit-submit').click();
  await expect(dana.getByTestId('release-revision')).toHaveText('2');
  await expect(item(dana, 'Code reviewed').getByTestId('item-state')).toHaveText('pending');
  const migrations = item(dana, 'Migrations additive-only');
  await expect(migrations.getByTestId('item-state')).toHaveText('failed');
  await expect(migrations.getByTestId('item-evidence')).toContainText('DROP COLUMN phone');

  // alice's page still shows revision 1: signing from it is refused.
  await item(alice, 'Tests passing').getByTestId('sign-note').fill('stale');
  await item(alice, 'Tests passing').getByTestId('sign').click();
  await expect(alice.getByTestId('action-error')).toContainText('changed since you loaded it');
  await openRelease(alice, releaseId);
  await expect(alice.getByTestId('release-revision')).toHaveText('2');
  await expect(item(alice, 'Tests passing').getByTestId('item-state')).toHaveText('pending');

  for (const p of [dana, alice]) await p.context().close();
});

test('a viewer sees releases and checklists and can change nothing', async ({ page, request }) => {
  await signIn(page, USERS.victor);
  await page.goto('/releases');
  await expectHydrated(page);
  await expect(page.getByTestId('request-submit')).toHaveCount(0);
  const firstRow = page.getByTestId('release-row').first();
  await expect(firstRow).toBeVisible();
  const releaseId = await firstRow.getAttribute('data-release');
  await openRelease(page, releaseId!);
  await expect(page.getByTestId('sign')).toHaveCount(0);
  await expect(page.getByTestId('revoke')).toHaveCount(0);
  await expect(page.getByTestId('deploy-release')).toHaveCount(0);
  await expect(page.getByTestId('edit-submit')).toHaveCount(0);

  const live = await liveVersion(request);
  for (const [path, form] of [
    ['/api/sign_item', { release: releaseId!, item: '1', revision: '1', note: 'viewer' }],
    ['/api/deploy_release', { release: releaseId!, revision: '1' }],
    ['/api/request_release', { environment: 'production', version: 'v2', notes: '', migration_sql: '' }],
    ['/api/reset_checklist', { environment: 'production' }],
  ] as const) {
    const res = await page.request.post(path, { form, headers: SAME_ORIGIN_JSON });
    expect(res.status(), path).toBe(403);
    expect(await res.text()).toContain('viewer may not');
  }
  expect(await liveVersion(request)).toBe(live);

  await page.goto('/environments/production/checklist');
  await expectHydrated(page);
  await expect(page.getByTestId('template')).toBeVisible();
  await expect(page.getByTestId('checklist-reset')).toHaveCount(0);
});
