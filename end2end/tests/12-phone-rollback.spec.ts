import type { APIRequestContext, Browser, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { CONSOLE_URL, ENVIRONMENT, USERS } from '../support/constants';
import {
  actionResult,
  environment,
  expectHydrated,
  expectLive,
  liveVersion,
  SAME_ORIGIN_JSON,
  signIn,
} from '../support/console';
import { expectNoHorizontalScroll, PHONES } from '../support/pages';
import { Taps } from '../support/taps';

// Issue 16's phone journey: the on-call person, on a 390×844 touch screen, signs
// in and rolls production back in at most 4 taps, and users get the version
// they had before. It changes what users get, so it runs last (12-…).

const PHONE = PHONES[1];
const MAX_TAPS = 4;

/**
 * Makes sure production has a warm standby to go back to. After the earlier
 * files it has one (09 deploys a release); run alone, on a fresh server with
 * v1 live and no checklist, this deploys v2 first. Not part of the journey.
 */
async function ensureStandby(browser: Browser): Promise<void> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, USERS.dana);
  const summary = environment(page).getByTestId('rollback-open');
  await expect(summary).toHaveText(/^Roll back (to|\(no standby\))/);
  if (/no standby/.test((await summary.textContent()) ?? '')) {
    const live = await liveVersion(page.request);
    const res = await page.request.post('/api/deploy', {
      form: { environment: ENVIRONMENT, version: live === 'v2' ? 'v1' : 'v2' },
      headers: SAME_ORIGIN_JSON,
    });
    expect(res.ok(), await res.text()).toBeTruthy();
  }
  await context.close();
}

/**
 * The browser's page process died under the journey (Chromium's "Target
 * crashed"). Seen twice at the end of a full suite run, never with the
 * file alone (8 of 8 passed with --repeat-each 8); the console had already
 * shown the rollback's success when it happened.
 */
class RendererCrashed extends Error {}

test('on a phone, the on-call person rolls production back in at most 4 taps', async ({ browser, request }) => {
  try {
    await phoneRollback(browser, request);
  } catch (e) {
    if (!(e instanceof RendererCrashed)) throw e;
    // Only a crash of the browser itself is tried again, once and in
    // full (a new page, the taps counted afresh), and the report says so.
    // Any failure of the console's fails the test.
    test.info().annotations.push({ type: 'retried', description: e.message });
    await phoneRollback(browser, request);
  }
});

async function phoneRollback(browser: Browser, request: APIRequestContext): Promise<void> {
  await ensureStandby(browser);
  const before = await liveVersion(request);

  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  let crashed = false;
  page.on('crash', () => {
    crashed = true;
  });
  try {
    await journey(page, request, before);
  } catch (e) {
    if (crashed) throw new RendererCrashed(`the page crashed: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
    throw e;
  } finally {
    await context.close();
  }
}

async function journey(page: Page, request: APIRequestContext, before: string): Promise<void> {
  const taps = new Taps();

  await test.step('sign in', async () => {
    await page.goto('/login');
    await expectHydrated(page);
    await expectNoHorizontalScroll(page, 'the sign-in page');
    await page.locator('input[name=username]').fill(USERS.dana.username);
    await page.locator('input[name=password]').fill(USERS.dana.password);
    await taps.tap(page.getByRole('button', { name: 'Sign in' }), 'Sign in');
    await expect(page).toHaveURL(`${CONSOLE_URL}/`);
    await expectHydrated(page);
  });

  const env = environment(page);
  let target = '';
  await test.step('the dashboard shows what users get and where a rollback takes them', async () => {
    await expect(env.getByTestId('live-version')).toBeVisible();
    await expect(env.getByTestId('live-version')).toContainText(before);
    const open = env.getByTestId('rollback-open');
    await expect(open).toHaveText(/^Roll back to \S+ \((blue|green)\)…$/);
    target = /^Roll back to (\S+) /.exec((await open.textContent()) ?? '')![1];
    expect(target, 'the rollback goes to another version').not.toBe(before);
    await expectNoHorizontalScroll(page, 'the dashboard');
  });

  await test.step('roll back with a reason', async () => {
    await taps.tap(env.getByTestId('rollback-open'), 'Roll back to …');
    await expect(env.getByTestId('rollback-reason')).toBeVisible();
    await expectNoHorizontalScroll(page, 'the dashboard with the rollback open');
    await env.getByTestId('rollback-reason').fill('e2e: on-call rollback from a phone');
    await taps.tap(env.getByTestId('rollback-confirm'), 'Confirm');
    await expect(actionResult(env, /^rollback #\d+/)).toHaveText(/^rollback #\d+ succeeded/, { timeout: 30_000 });
    await expectNoHorizontalScroll(page, 'the dashboard after the rollback');
  });

  await expectLive(request, target);
  expect(taps.count, `taps: ${taps.log.join(' → ')}`).toBeLessThanOrEqual(MAX_TAPS);
}
