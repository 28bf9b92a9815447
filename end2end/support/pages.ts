import { expect, type Page } from '@playwright/test';
import { CONSOLE_URL, ENVIRONMENT } from './constants';
import { deploymentIds, expectHydrated, SAME_ORIGIN_JSON } from './console';

/** One page of the console, as the phone and accessibility checks visit it. */
export interface ConsolePage {
  name: string;
  path: string;
  /** The sign-in page and the 404 are checked signed out. */
  signedIn: boolean;
}

/** The viewports of issue 16: two phones and the desktop the console was drawn for. */
export const PHONES = [
  { width: 360, height: 740 },
  { width: 390, height: 844 },
] as const;
export const DESKTOP = { width: 1280, height: 800 } as const;

/**
 * The id of a release of production: the newest one, or one requested now as the
 * signed-in admin when the suite runs this file alone (a release left open and
 * unsigned changes nothing another test reads: later files start from the state
 * they find).
 */
async function releaseId(page: Page): Promise<number> {
  const list = await page.request.post('/api/list_releases', { headers: SAME_ORIGIN_JSON });
  expect(list.ok(), await list.text()).toBeTruthy();
  const { releases } = (await list.json()) as { releases: Array<{ id: number }> };
  if (releases.length > 0) return Math.max(...releases.map((r) => r.id));
  const made = await page.request.post('/api/request_release', {
    form: { environment: ENVIRONMENT, version: 'v2', notes: 'e2e: a release to look at', migration_sql: '' },
    headers: SAME_ORIGIN_JSON,
  });
  expect(made.ok(), await made.text()).toBeTruthy();
  return ((await made.json()) as { id: number }).id;
}

/** Every page an admin can open (each role's pages are a subset), plus sign-in and a 404. */
export async function consolePages(page: Page): Promise<ConsolePage[]> {
  const deployment = Math.max(...(await deploymentIds(page)));
  const release = await releaseId(page);
  const env = ENVIRONMENT;
  const signedIn = (name: string, path: string): ConsolePage => ({ name, path, signedIn: true });
  return [
    signedIn('dashboard', '/'),
    signedIn('deployment', `/deployments/${deployment}`),
    signedIn('releases', '/releases'),
    signedIn('release', `/releases/${release}`),
    signedIn('audit', '/audit'),
    signedIn('environments', '/environments'),
    signedIn('environment', `/environments/${env}`),
    signedIn('checklist', `/environments/${env}/checklist`),
    signedIn('lock', `/environments/${env}/lock`),
    signedIn('settings', `/environments/${env}/settings`),
    signedIn('webhooks', `/environments/${env}/webhooks`),
    signedIn('users', '/users'),
    signedIn('tokens', '/tokens'),
    { name: 'login', path: '/login', signedIn: false },
    { name: '404', path: '/no-such-page', signedIn: false },
  ];
}

/** Opens `p` and waits until it is interactive and its data is in. */
export async function open(page: Page, p: ConsolePage): Promise<void> {
  await page.goto(`${CONSOLE_URL}${p.path}`);
  await expectHydrated(page);
  // Pages render whole on the server (SsrMode::Async); a loading line left
  // means the data is still coming.
  await expect(page.locator('p.notice', { hasText: /^Loading/ })).toHaveCount(0);
}

/**
 * How wide the document is against the screen, and what sticks out. `width` is
 * the narrower of `window.innerWidth` and the layout viewport: on a phone
 * (`isMobile`) Chromium zooms out to fit a page that is too wide, and
 * `innerWidth` then grows with it (a 743 px page on a 360 px phone reports 743).
 */
export async function horizontalOverflow(page: Page): Promise<{ scrollWidth: number; width: number; wide: string[] }> {
  return page.evaluate(() => {
    const width = Math.min(window.innerWidth, document.documentElement.clientWidth);
    const wide: string[] = [];
    for (const el of Array.from(document.body.querySelectorAll('*'))) {
      const r = el.getBoundingClientRect();
      if (r.right > width + 0.5 && wide.length < 8) {
        const cls = typeof el.className === 'string' && el.className.trim() ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
        wide.push(`${el.tagName.toLowerCase()}${cls} right=${Math.round(r.right)}`);
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, width, wide };
  });
}

/** The check the issue names: the page does not scroll sideways. */
export async function expectNoHorizontalScroll(page: Page, what = page.url()): Promise<void> {
  const o = await horizontalOverflow(page);
  const viewport = page.viewportSize()?.width ?? Infinity;
  expect(o.scrollWidth, `${what} scrolls sideways: ${o.wide.join(', ')}`).toBeLessThanOrEqual(Math.min(o.width, viewport));
}
