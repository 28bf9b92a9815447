import { expect, test } from '../support/test';
import { CONSOLE_URL, USERS } from '../support/constants';
import { environment, expectHydrated } from '../support/console';

// Issue 16, item 3: the console before (or without) its WASM. Pages carry their
// data in the HTML the server sends, and every form is a plain POST that comes
// back to its page with its answer (post/redirect/get). Nothing here changes
// what users get: a dry run and a refused deploy.

test.describe('with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('an on-call person signs in, reads the dashboard, plans and is told why a deploy is refused', async ({
    page,
  }) => {
    await page.goto('/login');
    await page.locator('input[name=username]').fill(USERS.dana.username);
    await page.locator('input[name=password]').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${CONSOLE_URL}/login`);
    await expect(page.getByText('wrong username or password')).toBeVisible();

    await page.locator('input[name=username]').fill(USERS.dana.username);
    await page.locator('input[name=password]').fill(USERS.dana.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${CONSOLE_URL}/`);
    await expect(page.getByTestId('current-user')).toHaveText(USERS.dana.username);

    // The data is in the page: no "Loading…" waiting for a script that never runs.
    const production = environment(page);
    await expect(production.getByTestId('live-version')).toContainText(/Users get v\d/);
    await expect(page.locator('main')).not.toContainText('Loading');
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
    // The charts are SVG the server drew: axes and lines, no script needed.
    await expect(production.getByTestId('chart-rps').locator('svg text.tick').last()).toHaveText('now');
    await expect(production.getByTestId('chart-rps').locator('path.line')).toHaveCount(2);

    // A dry run answers under production's form only (staging has its own).
    await production.getByTestId('plan-version').fill('v2');
    await production.getByRole('button', { name: 'Plan (dry run)' }).click();
    await expect(page).toHaveURL(`${CONSOLE_URL}/`);
    await expect(production.getByTestId('plan')).toBeVisible();
    await expect(production.getByTestId('plan-step').first()).toBeVisible();
    await expect(environment(page, 'staging').getByTestId('plan')).toHaveCount(0);

    // A refused deploy says why, as an alert on the page, the text typed
    // shown as text, and deploys nothing. (Which refusal comes first depends
    // on the files before this one: by now production asks for approved
    // releases; on a fresh console the version's characters are refused.)
    const before = await production.getByTestId('live-version').textContent();
    await production.getByTestId('deploy-version').fill('v2<b>bold</b>');
    await production.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect(page).toHaveURL(`${CONSOLE_URL}/`);
    const refusal = production.getByRole('alert');
    await expect(refusal).toContainText('v2<b>bold</b>');
    await expect(refusal).toContainText(/requires an approved release|may only use/);
    await expect(production.locator('b', { hasText: 'bold' })).toHaveCount(0);
    await expect(production.getByTestId('live-version')).toHaveText(before ?? '');

    // The answer was for that one page view: a reload does not post again
    // and does not show it again.
    await page.reload();
    await expect(production.getByTestId('action-result')).toHaveCount(0);
    await expect(production.getByTestId('plan')).toHaveCount(0);
  });

  test('a release requested without JavaScript opens on its own page', async ({ page }) => {
    await page.goto('/login');
    await page.locator('input[name=username]').fill(USERS.dana.username);
    await page.locator('input[name=password]').fill(USERS.dana.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${CONSOLE_URL}/`);

    await page.goto('/releases');
    const notes = `asked for without JavaScript ${Date.now()}`;
    await page.getByTestId('request-environment').selectOption('production');
    await page.getByTestId('request-version').fill('v3');
    await page.getByTestId('request-notes').fill(notes);
    await page.getByTestId('request-submit').click();
    // The server sends the browser to the new release (as the router does
    // with JavaScript), not back to the list.
    await expect(page).toHaveURL(new RegExp(`${CONSOLE_URL}/releases/\\d+$`));
    await expect(page.locator('main')).toContainText(notes);
    await expect(page.getByTestId('release-requester')).toHaveText(USERS.dana.username);
    await expect(page.getByRole('heading', { level: 1 })).toContainText('v3 to production');
  });
});

test('a form posted before the WASM takes over keeps its answer through hydration', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /hydrat/i.test(m.text())) errors.push(m.text());
  });
  await page.goto('/login');
  await expectHydrated(page);
  await page.locator('input[name=username]').fill(USERS.dana.username);
  await page.locator('input[name=password]').fill(USERS.dana.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${CONSOLE_URL}/`);
  await expectHydrated(page);

  // `form.submit()` skips the WASM's handler: the browser posts the form
  // itself, as it does when someone presses the button before hydration.
  const production = environment(page);
  await production.getByTestId('plan-version').fill('v2');
  await Promise.all([
    page.waitForURL(`${CONSOLE_URL}/`, { waitUntil: 'load' }),
    production.locator('form.plan').evaluate((f: HTMLFormElement) => f.submit()),
  ]);
  await expectHydrated(page);
  await expect(production.getByTestId('plan')).toBeVisible();
  await expect(environment(page, 'staging').getByTestId('plan')).toHaveCount(0);
  expect(errors).toEqual([]);

  // The first navigation in the browser forgets the answer.
  await page.getByRole('link', { name: 'Releases' }).first().click();
  await expect(page).toHaveURL(`${CONSOLE_URL}/releases`);
  await page.getByRole('link', { name: 'Dashboard' }).first().click();
  await expect(page).toHaveURL(`${CONSOLE_URL}/`);
  await expect(production.getByTestId('plan')).toHaveCount(0);
});
