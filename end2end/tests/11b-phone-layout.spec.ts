import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { environment, signIn } from '../support/console';
import { consolePages, horizontalOverflow, open, PHONES } from '../support/pages';

// Issue 16: on a phone no page scrolls sideways, and the dashboard shows the live
// version and the rollback before the charts and the history. Reads only.

for (const viewport of PHONES) {
  test(`no page scrolls sideways at ${viewport.width}×${viewport.height}`, async ({ browser }) => {
    test.setTimeout(120_000);
    const admin = await browser.newContext({ viewport, isMobile: true, hasTouch: true });
    const out = await browser.newContext({ viewport, isMobile: true, hasTouch: true });
    const page = await admin.newPage();
    await signIn(page, USERS.admin);
    const outPage = await out.newPage();
    const wide: string[] = [];
    const widths: string[] = [];
    for (const p of await consolePages(page)) {
      const tab = p.signedIn ? page : outPage;
      await open(tab, p);
      const o = await horizontalOverflow(tab);
      widths.push(`${p.name}=${o.scrollWidth}`);
      if (o.scrollWidth > Math.min(o.width, viewport.width)) wide.push(`${p.name} is ${o.scrollWidth} px wide: ${o.wide.join(', ')}`);
    }
    console.log(`scroll widths at ${viewport.width}×${viewport.height}: ${widths.join(' ')}`);
    await admin.close();
    await out.close();
    expect(wide, 'pages wider than the phone').toEqual([]);
  });
}

test('on a phone the dashboard shows the live version and the rollback before the charts and the history', async ({ browser }) => {
  const context = await browser.newContext({ viewport: PHONES[1], isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page, USERS.dana);
  const env = environment(page);
  const top = async (testid: string) => (await env.getByTestId(testid).first().boundingBox())?.y ?? NaN;
  const live = await top('live-version');
  const rollback = await top('rollback-open');
  const traffic = await top('traffic');
  const history = await top('history');
  expect(live, 'the live version comes first').toBeLessThan(rollback);
  expect(rollback, 'the rollback comes before the traffic charts').toBeLessThan(traffic);
  expect(traffic, 'the charts come before the history').toBeLessThan(history);
  // Without scrolling: the live version and the rollback fit on the first screen.
  expect(rollback + 40).toBeLessThan(PHONES[1].height);
  await context.close();
});
