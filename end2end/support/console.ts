import { expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';
import { APP_URL, CONSOLE_URL, ENVIRONMENT, type Account } from './constants';

/** Only the WASM sets it: the page is interactive, forms no longer post natively. */
export async function expectHydrated(page: Page): Promise<void> {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function signIn(page: Page, account: Account): Promise<void> {
  await page.goto('/login');
  await expectHydrated(page);
  await page.locator('input[name=username]').fill(account.username);
  await page.locator('input[name=password]').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${CONSOLE_URL}/`);
  await expect(page.getByTestId('current-user')).toHaveText(account.username);
  await expectHydrated(page);
}

export function environment(page: Page, name = ENVIRONMENT): Locator {
  return page.locator(`section[data-environment="${name}"]`);
}

export function slot(env: Locator, color: 'blue' | 'green'): Locator {
  return env.locator(`[data-slot="${color}"]`);
}

/** Deploy and rollback each show their own result line: pick one by its text. */
export function actionResult(env: Locator, text: string | RegExp): Locator {
  return env.getByTestId('action-result').filter({ hasText: text });
}

export function historyRows(env: Locator): Locator {
  return env.getByTestId('history').locator('tbody tr');
}

/** The history row of deployment `id` (first column). */
export function historyRow(env: Locator, id: number | string): Locator {
  return historyRows(env).filter({
    has: env.page().locator('td:first-child', { hasText: new RegExp(`^\\s*${id}\\s*$`) }),
  });
}

/** Columns: #, Kind, Status, From → to, Who, When, Duration, Details. */
export const COL = { id: 0, kind: 1, status: 2, versions: 3, who: 4, when: 5, duration: 6, details: 7 } as const;

export async function deploy(env: Locator, version: string): Promise<void> {
  await env.getByTestId('deploy-version').fill(version);
  await env.getByRole('button', { name: 'Deploy', exact: true }).click();
}

/** Opens the rollback confirmation (it names the target first), gives the reason, confirms. */
export async function rollBack(env: Locator, reason: string): Promise<void> {
  const confirm = env.getByTestId('rollback');
  if (!(await confirm.evaluate((d) => (d as HTMLDetailsElement).open))) {
    await env.getByTestId('rollback-open').click();
  }
  await env.getByTestId('rollback-reason').fill(reason);
  await env.getByTestId('rollback-confirm').click();
}

/** What users get right now: `switchyard-demo <version>` → `<version>`. */
export async function liveVersion(request: APIRequestContext): Promise<string> {
  const res = await request.get(APP_URL, { headers: { 'Cache-Control': 'no-cache' } });
  const body = (await res.text()).trim();
  expect(res.status(), `app URL answered: ${body}`).toBe(200);
  const m = /^switchyard-demo (\S+)$/.exec(body);
  if (!m) throw new Error(`unexpected answer from ${APP_URL}: ${JSON.stringify(body)}`);
  return m[1];
}

/** Waits until users are served `version` (the switch is atomic, the check is retried anyway). */
export async function expectLive(request: APIRequestContext, version: string): Promise<void> {
  await expect.poll(() => liveVersion(request), { message: `users should get ${version}` }).toBe(version);
}

/** Server functions are POSTed like the browser does, from the console's own origin. */
export const SAME_ORIGIN_JSON = { Accept: 'application/json', Origin: CONSOLE_URL } as const;

/** The deployment ids the server knows for the environment, read as the signed-in user. */
export async function deploymentIds(page: Page, name = ENVIRONMENT): Promise<number[]> {
  const res = await page.request.post('/api/deployment_history', {
    form: { name },
    headers: SAME_ORIGIN_JSON,
  });
  expect(res.ok(), await res.text()).toBeTruthy();
  const rows = (await res.json()) as Array<{ id: number }>;
  return rows.map((r) => r.id);
}
