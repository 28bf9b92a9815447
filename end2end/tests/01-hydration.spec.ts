import type { Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { actionResult, deploy, environment, expectHydrated, signIn } from '../support/console';

/** Marks the current document; a full page load (native form post) loses the mark. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __e2eSameDocument?: boolean }).__e2eSameDocument = true;
  });
}

async function sameDocument(page: Page): Promise<boolean> {
  return page.evaluate(
    () => (window as unknown as { __e2eSameDocument?: boolean }).__e2eSameDocument === true,
  );
}

test('release build hydrates', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /panicked|RuntimeError|WebAssembly|unreachable|hydration/i.test(m.text())) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  const failedAssets: string[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/pkg/') && r.status() >= 400) failedAssets.push(`${r.url()} → ${r.status()}`);
  });
  page.on('requestfailed', (r) => {
    if (new URL(r.url()).pathname.startsWith('/pkg/')) failedAssets.push(`${r.url()} → ${r.failure()?.errorText}`);
  });
  let loads = 0;
  page.on('load', () => loads++);

  // The page loads its islands (docs/ARCHITECTURE.md, "Islands"): the
  // sign-in form is server HTML and posts as a page, so a refused sign-in
  // comes back as the next page, the username kept, the password not.
  await page.goto('/login');
  try {
    await expectHydrated(page);
  } catch (e) {
    // Say why: usually the server asks for a WASM file the build did not produce
    // (server not built by cargo-leptos, stale target/site, ...).
    throw new Error(
      `the page did not hydrate.\nfailed front-end requests: ${failedAssets.join('; ') || 'none'}` +
        `\nbrowser errors: ${problems.join(' | ') || 'none'}\n${(e as Error).message}`,
    );
  }
  expect(failedAssets, 'front-end requests that failed').toEqual([]);
  await page.locator('input[name=username]').fill(USERS.dana.username);
  await page.locator('input[name=password]').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toHaveText('wrong username or password');
  await expect(page).toHaveURL(/\/login$/);
  await expectHydrated(page);
  await expect(page.locator('input[name=username]')).toHaveValue(USERS.dana.username);
  await expect(page.locator('input[name=password]')).toHaveValue('');

  // The dashboard's deploy form is an island: a refused deploy is answered
  // in place, with no page load.
  await signIn(page, USERS.dana);
  const env = environment(page);
  await markDocument(page);
  loads = 0;
  await deploy(env, '');
  await expect(actionResult(env, 'version is required')).toBeVisible();
  expect(await sameDocument(page), 'deploy form must not reload the page').toBe(true);
  expect(loads, 'no page load while submitting the deploy form').toBe(0);
  // Only v1 has ever run: the rollback says there is nothing to go back to
  // and cannot be pressed.
  await expect(env.getByTestId('rollback-open')).toHaveText('Roll back (no standby)');
  await env.getByTestId('rollback-open').click();
  await expect(env.getByTestId('rollback-plan')).toContainText('the green slot has never run a version');
  await expect(env.getByTestId('rollback-confirm')).toBeDisabled();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');

  expect(problems, 'errors in the browser').toEqual([]);
});
