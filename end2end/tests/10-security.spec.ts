import type { Browser, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { USERS, type Account } from '../support/constants';
import { expectHydrated, signIn } from '../support/console';

async function person(browser: Browser, account: Account): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, account);
  return page;
}

/** Set by the payloads below if any of them ever runs. */
async function scriptRan(page: Page): Promise<boolean> {
  return page.evaluate(() => document.body.dataset.xss !== undefined || (window as { __xss?: boolean }).__xss === true);
}

const NOTES = `</textarea><script>document.body.dataset.xss='notes'</script><img src=x onerror="window.__xss=true">`;
const SQL = `</textarea><script>document.body.dataset.xss='sql'</script>`;

test('release notes holding markup are shown as text to the people who open them', async ({ browser }) => {
  const dana = await person(browser, USERS.dana);
  await dana.goto('/releases');
  await expectHydrated(dana);
  await dana.getByTestId('request-environment').selectOption('production');
  await dana.getByTestId('request-version').fill('v2');
  await dana.getByTestId('request-notes').fill(NOTES);
  await dana.getByTestId('request-sql').fill(SQL);
  await dana.getByTestId('request-submit').click();
  await expect(dana).toHaveURL(/\/releases\/\d+$/);
  const url = dana.url();

  // The approver opens it fresh: the server's HTML, then hydration.
  const alice = await person(browser, USERS.alice);
  const answer = await alice.goto(url);
  const csp = answer?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self' 'nonce-");
  expect(csp).not.toContain('unsafe-inline');
  expect(answer?.headers()['x-frame-options']).toBe('DENY');
  expect(answer?.headers()['cache-control']).toBe('no-store');
  await expectHydrated(alice);
  await expect(alice.getByText(NOTES).first()).toBeVisible();
  expect(await scriptRan(alice)).toBe(false);

  // The requester's own edit form holds the text as its value, unchanged.
  await dana.reload();
  await expectHydrated(dana);
  await expect(dana.getByTestId('edit-notes')).toHaveValue(NOTES);
  await expect(dana.getByTestId('edit-sql')).toHaveValue(SQL);
  expect(await scriptRan(dana)).toBe(false);
  // Saved without a change, it stays byte for byte what was written. The
  // form posts as a page would (islands: it is server HTML): the reload
  // waits for the saved page, or it could cancel the post.
  const saved = dana.waitForResponse(
    (r) => new URL(r.url()).pathname === '/api/edit_release' && r.request().method() === 'POST',
  );
  await dana.getByTestId('edit-submit').click();
  await saved;
  await dana.waitForLoadState();
  await dana.reload();
  await expect(dana.getByTestId('edit-notes')).toHaveValue(NOTES);
});

test('the front end is served pre-compressed and cached under content-hashed names', async ({ request }) => {
  const page = await request.get('/login');
  const html = await page.text();
  // A release build names its files after their content (cargo-leptos hash-files).
  const wasm = html.match(/\/pkg\/switchyard\.[A-Za-z0-9_-]{22}\.wasm/)?.[0];
  expect(wasm, 'the page names its content-hashed WASM').toBeTruthy();
  const css = html.match(/\/pkg\/switchyard\.[A-Za-z0-9_-]{22}\.css/)?.[0];
  expect(css, 'the page names its content-hashed stylesheet').toBeTruthy();
  const res = await request.get(wasm!, { headers: { 'Accept-Encoding': 'br, gzip' } });
  expect(res.status()).toBe(200);
  // The build's brotli copy, and kept for a year: the name changes with the content.
  expect(res.headers()['content-encoding']).toBe('br');
  expect(res.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
  const gz = await request.get(wasm!, { headers: { 'Accept-Encoding': 'gzip' } });
  expect(gz.headers()['content-encoding']).toBe('gzip');
});
