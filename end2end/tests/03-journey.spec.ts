import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import {
  actionResult,
  COL,
  deploy,
  deploymentIds,
  environment,
  expectHydrated,
  expectLive,
  historyRow,
  rollBack,
  SAME_ORIGIN_JSON,
  signIn,
  slot,
} from '../support/console';

function idOf(text: string): number {
  const m = /#(\d+)/.exec(text);
  if (!m) throw new Error(`no deployment number in ${JSON.stringify(text)}`);
  return Number(m[1]);
}

// The acceptance test. The server starts with v1 live on blue.
test('deployer ships v2 to users, then rolls back to v1 with a reason', async ({ page, request }) => {
  const reason = `e2e: checkout errors after v2 (${Date.now()})`;

  await signIn(page, USERS.dana);
  const env = environment(page);
  const blue = slot(env, 'blue');
  const green = slot(env, 'green');

  await test.step('v1 is live on blue', async () => {
    await expectLive(request, 'v1');
    await expect(blue.getByTestId('slot-marker')).toHaveText('active');
    await expect(blue.getByTestId('slot-version')).toHaveText('v1');
    await expect(env.getByTestId('app-url')).toHaveAttribute('href', 'http://127.0.0.1:3180/');
  });

  let deployId = 0;
  await test.step('deploy v2', async () => {
    // The pending state can be short: record it as it happens instead of polling for it.
    await env.locator('form.deploy button[type=submit]').evaluate((button) => {
      const w = window as unknown as { __e2eSawDeploying?: boolean };
      w.__e2eSawDeploying = false;
      new MutationObserver(() => {
        const b = button as HTMLButtonElement;
        if (b.textContent?.trim() === 'Deploying…' && b.disabled) w.__e2eSawDeploying = true;
      }).observe(button, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    await deploy(env, 'v2');
    const result = actionResult(env, /^deploy #\d+/);
    await expect(result).toHaveText(/^deploy #\d+ succeeded: v2 is live on green; blue kept warm as standby$/, {
      timeout: 30_000,
    });
    deployId = idOf((await result.textContent()) ?? '');
    await expect(env.getByRole('button', { name: 'Deploy', exact: true })).toBeEnabled();
    expect(
      await page.evaluate(() => (window as unknown as { __e2eSawDeploying?: boolean }).__e2eSawDeploying),
      'the button said "Deploying…" (disabled) while the deploy ran',
    ).toBe(true);
  });

  await test.step('users get v2; green is active, blue standby', async () => {
    await expectLive(request, 'v2');
    await expect(green.getByTestId('slot-marker')).toHaveText('active');
    await expect(green.getByTestId('slot-version')).toHaveText('v2');
    await expect(green.getByTestId('slot-state')).toHaveText('healthy');
    await expect(blue.getByTestId('slot-marker')).toHaveText('standby');
    await expect(blue.getByTestId('slot-version')).toHaveText('v1');
    // The standby window (15 minutes by default) is shown on the standby,
    // counting down with each refresh.
    const standby = blue.getByTestId('slot-standby');
    await expect(standby).toHaveText(/^warm until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(1[45] min \d\d s left\)$/);
    const left = async () => {
      const m = /\((\d+) min (\d+) s left\)/.exec((await standby.textContent()) ?? '');
      return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
    };
    const first = await left();
    await expect.poll(left, { message: 'the standby countdown goes down' }).toBeLessThan(first);
    await expect(green.getByTestId('slot-standby')).toHaveCount(0);
  });

  await test.step("the traffic panel counts the users' requests on green", async () => {
    // expectLive just asked the app through switchyard-proxy: the newest
    // 10-second point of green's chart has answers; the panel refreshes every 2 s.
    const greenTraffic = env.locator('[data-traffic-slot="green"]');
    await expect(greenTraffic.getByTestId('traffic-rps').getByTestId('chart-now')).toHaveText(/^\d+\.\d\/s$/);
    await expect(greenTraffic.getByTestId('traffic-rps').getByTestId('chart-now')).not.toHaveText('0/s');
    await expect(greenTraffic.getByTestId('traffic-errors').getByTestId('chart-now')).toHaveText('0.0 %');
    // One chart per metric with both slots on one scale: axes, minute ticks
    // up to now, green's line drawn, the switch just made marked, and each
    // step's figures in a title on hover.
    const rps = env.getByTestId('chart-rps');
    await expect(rps.locator('figcaption')).toHaveText('Requests per second');
    await expect(rps.locator('path.line.green')).toHaveAttribute('d', /^M\d/);
    await expect(rps.locator('text.tick').last()).toHaveText('now');
    await expect(rps.locator('line.switch')).toHaveCount(1);
    await expect(rps.locator('rect.hover title').last()).toHaveText(/: blue .+, green \d+\.\d\/s$/);
    // The same figures by keyboard: the chart takes focus (the panel holds
    // still meanwhile), the arrows step through time and the readout under
    // it says what each step held.
    const readout = rps.getByTestId('chart-readout');
    await rps.locator('svg').focus();
    await expect(readout).toHaveText(/: blue .+, green \d+\.\d\/s$/);
    const newest = (await readout.textContent()) ?? '';
    await page.keyboard.press('ArrowLeft');
    await expect(readout).toHaveText(/^−\d+ (s|min)/);
    await expect(readout).not.toHaveText(newest);
    await expect(rps.locator('line.cursor')).toHaveAttribute('visibility', 'visible');
    await page.keyboard.press('Home');
    await expect(readout).toHaveText(/^−\d+ min/);
    await page.keyboard.press('End');
    await expect(readout).toHaveText(newest);
    await rps.locator('svg').blur();
    await expect(env.getByTestId('chart-errors').locator('figcaption')).toContainText('percent');
    await expect(env.getByTestId('chart-p95').locator('figcaption')).toContainText('milliseconds');
  });

  let rollbackId = 0;
  await test.step('roll back with a reason', async () => {
    // The form says what it will do before anyone presses it.
    await expect(env.getByTestId('rollback-open')).toHaveText('Roll back to v1 (blue)…');
    await env.getByTestId('rollback-open').click();
    await expect(env.getByTestId('rollback-plan')).toContainText('Users move from v2 (green) to v1 (blue).');
    await expect(env.getByTestId('rollback-confirm')).toHaveText('Confirm: roll back to v1 (blue)');
    await rollBack(env, reason);
    const result = actionResult(env, /^rollback #\d+/);
    await expect(result).toHaveText(/^rollback #\d+ succeeded: /);
    rollbackId = idOf((await result.textContent()) ?? '');
    expect(rollbackId).toBeGreaterThan(deployId);
    // Done: the reason is cleared and the confirmation closed, so a second
    // press cannot flip users back by accident; the target is now v2.
    await expect(env.getByTestId('rollback-reason')).toHaveValue('');
    await expect(env.getByTestId('rollback')).not.toHaveAttribute('open', '');
    await expect(env.getByTestId('rollback-open')).toHaveText('Roll back to v2 (green)…');
  });

  await test.step('users get v1 again; blue is active, green standby', async () => {
    await expectLive(request, 'v1');
    await expect(blue.getByTestId('slot-marker')).toHaveText('active');
    await expect(green.getByTestId('slot-marker')).toHaveText('standby');
  });

  await test.step('history lists the deploy and the rollback, by dana', async () => {
    const deployCells = historyRow(env, deployId).locator('td');
    await expect(deployCells.nth(COL.kind)).toHaveText('deploy');
    await expect(deployCells.nth(COL.status)).toHaveText('succeeded');
    await expect(deployCells.nth(COL.versions)).toHaveText('v1 → v2');
    await expect(deployCells.nth(COL.who)).toHaveText('dana');

    const rollbackCells = historyRow(env, rollbackId).locator('td');
    await expect(rollbackCells.nth(COL.kind)).toHaveText('rollback');
    await expect(rollbackCells.nth(COL.status)).toHaveText('succeeded');
    await expect(rollbackCells.nth(COL.versions)).toHaveText('v2 → v1');
    await expect(rollbackCells.nth(COL.who)).toHaveText('dana');
    await expect(rollbackCells.nth(COL.details)).toContainText(reason);
  });

  await test.step("the deploy's page shows its steps, each succeeded", async () => {
    await historyRow(env, deployId).getByTestId('deployment-link').click();
    await expect(page).toHaveURL(new RegExp(`/deployments/${deployId}$`));
    await expect(page.getByTestId('deployment-status')).toHaveText('succeeded');
    await expect(page.getByTestId('deployment-versions')).toContainText('v1');
    await expect(page.getByTestId('deployment-versions')).toContainText('v2');
    const steps = page.getByTestId('steps').getByTestId('step');
    await expect(steps).toHaveCount(8);
    expect(await steps.evaluateAll((li) => li.map((e) => e.getAttribute('data-step')))).toEqual([
      'lock',
      'preflight',
      'start',
      'health',
      'gates',
      'switch',
      'drain',
      'standby',
    ]);
    for (const status of await steps.getByTestId('step-status').allTextContents()) {
      expect(status).toBe('succeeded');
    }
    // The gates step says what it measured on the idle slot.
    await expect(page.locator('[data-step="gates"]')).toContainText(/smoke \/ 200; 50 requests to \/: p95 [\d.]+ ms/);
    await expect(page.getByTestId('deployment-live')).toHaveCount(0);
    // The deploy was watched after its switch; dana's rollback ended the watch.
    await expect(page.getByTestId('watch-status')).toHaveText('stopped');
    await expect(page.getByTestId('watch-message')).toContainText('ended early: traffic moved');
  });
});

// The deployment's page follows a running deploy over server-sent events: each
// event fetches the page's HTML and its steps change in place, with no reload
// and no server-function calls; when the stream cannot be opened, the page
// fetches itself once a second instead, and stops once the deployment ended.
test("a running deploy's page updates live over server-sent events", async ({ page, context, browser }) => {
  await signIn(page, USERS.dana);
  const before = await deploymentIds(page);
  const seen: { method: string; path: string; type: string }[] = [];
  page.on('request', (r) => seen.push({ method: r.method(), path: new URL(r.url()).pathname, type: r.resourceType() }));

  // v2+slow binds its port after 3 s: the deploy sits in its health wait.
  // Its answer only comes when it has finished, so it is not awaited here.
  const deploying = page.request.post('/api/deploy', {
    form: { environment: 'production', version: 'v2+slow' },
    headers: SAME_ORIGIN_JSON,
    timeout: 60_000,
  });
  let id = 0;
  await expect
    .poll(async () => {
      id = (await deploymentIds(page)).find((d) => !before.includes(d)) ?? 0;
      return id;
    })
    .toBeGreaterThan(0);

  await page.goto(`/deployments/${id}`);
  const step = (name: string) => page.locator(`[data-step="${name}"]`).getByTestId('step-status');
  // What the server rendered: the deploy has not switched yet.
  await expect(page.getByTestId('deployment-live')).toBeVisible();
  expect(await step('switch').textContent()).toBe('pending');
  await expectHydrated(page);
  await page.evaluate(() => {
    (window as unknown as { __e2eSamePage?: boolean }).__e2eSamePage = true;
  });

  await test.step('the steps change in place until the deploy has succeeded', async () => {
    await expect(page.getByTestId('deployment-status')).toHaveText('succeeded', { timeout: 30_000 });
    await expect(step('health')).toHaveText('succeeded');
    await expect(step('switch')).toHaveText('succeeded');
    await expect(page.getByTestId('deployment-live')).toHaveCount(0);
    // The watch window runs after the switch: the page keeps following it.
    await expect(page.getByTestId('watch-status')).toHaveText('watching');
    expect((await deploying).ok()).toBe(true);
  });

  await test.step('without the event stream the page asks every second instead', async () => {
    const fallback = await context.newPage();
    await fallback.route(`**/api/deployments/${id}/events`, (route) => route.abort());
    const asked: string[] = [];
    fallback.on('request', (r) => {
      if (new URL(r.url()).pathname === `/deployments/${id}` && r.resourceType() === 'fetch') asked.push(r.method());
    });
    await fallback.goto(`/deployments/${id}`);
    await expectHydrated(fallback);
    await expect(fallback.getByTestId('watch-status')).toHaveText('watching');
    await expect.poll(() => asked.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);

    // Ending the watch (a person rolls back) reaches both pages, neither
    // reloaded. The admin rolls back: the audit journey (07) reads dana's.
    const adminContext = await browser.newContext();
    const admin = await adminContext.newPage();
    await signIn(admin, USERS.admin);
    const rollback = await admin.request.post('/api/rollback', {
      form: { environment: 'production', reason: 'e2e: live page check' },
      headers: SAME_ORIGIN_JSON,
    });
    expect(rollback.ok(), await rollback.text()).toBe(true);
    await adminContext.close();
    await expect(page.getByTestId('watch-status')).toHaveText('stopped');
    await expect(fallback.getByTestId('watch-status')).toHaveText('stopped');
    // Once the deployment has nothing more to show, the asking stops.
    const settled = asked.length;
    await fallback.waitForTimeout(2_500);
    expect(asked.length).toBe(settled);
    await fallback.close();
  });

  await test.step('the updates came from one event stream, not from asking again', async () => {
    expect(await page.evaluate(() => (window as unknown as { __e2eSamePage?: boolean }).__e2eSamePage)).toBe(true);
    const streams = seen.filter((r) => r.path === `/api/deployments/${id}/events`);
    expect(streams, JSON.stringify(seen)).toHaveLength(1);
    expect(streams[0].method).toBe('GET');
    expect(streams[0].type).toBe('eventsource');
    const asked = seen.filter((r) => r.path === '/api/load_deployment');
    expect(asked, 'server-function calls for the deployment').toHaveLength(0);
    // Each event brought the page's fresh HTML (a fetch, not a navigation).
    const fetched = seen.filter((r) => r.path === `/deployments/${id}` && r.type === 'fetch');
    expect(fetched.length, JSON.stringify(seen)).toBeGreaterThanOrEqual(1);
    expect(fetched.every((r) => r.method === 'GET')).toBe(true);
  });
});
