/**
 * First load of every console page with an empty cache: the bytes of WASM and
 * JavaScript the browser downloads (as sent, brotli), the time to the first
 * paint and the time until the page is interactive (the `data-hydrated` mark
 * the front end sets once hydration is done), unthrottled and on Chrome's
 * "Slow 4G" profile (562.5 ms round trip, 1.47 Mbit/s down, 675 kbit/s up, as
 * DevTools and Lighthouse apply it), with and without a 4× CPU slowdown.
 *
 *   cd end2end && SWITCHYARD_BIN=… LEPTOS_SITE_ROOT=… \
 *     npx playwright test -c playwright.bench.config.ts
 *
 * Prints one Markdown table; the figures are in issue notes, not asserted.
 */
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { test } from '../support/test';
import { CONSOLE_URL, USERS } from '../support/constants';
import { signIn } from '../support/console';
import { consolePages, type ConsolePage } from '../support/pages';

interface Profile {
  name: string;
  network?: { latency: number; downloadThroughput: number; uploadThroughput: number };
  cpu?: number;
}

const SLOW_4G = { latency: 562.5, downloadThroughput: (1.4746 * 1_000_000) / 8, uploadThroughput: (0.675 * 1_000_000) / 8 };
const PROFILES: Profile[] = [
  { name: 'unthrottled' },
  { name: 'slow 4G', network: SLOW_4G },
  { name: 'slow 4G, CPU ×4', network: SLOW_4G, cpu: 4 },
];

interface Load {
  wasmBytes: number;
  wasmFiles: number;
  jsBytes: number;
  firstPaint: number;
  interactive: number;
}

/** Records, in the page's own clock, when `<body>` gets `data-hydrated`. */
const HYDRATION_CLOCK = `
  new MutationObserver((_, obs) => {
    if (document.body && document.body.getAttribute('data-hydrated') === 'true') {
      window.__hydratedAt = performance.now();
      obs.disconnect();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-hydrated'] });
`;

async function load(browser: Browser, state: unknown, p: ConsolePage, profile: Profile): Promise<Load> {
  // A new context is a new, empty cache.
  const context: BrowserContext = await browser.newContext(
    p.signedIn ? { storageState: state as never } : {},
  );
  const page: Page = await context.newPage();
  await page.addInitScript(HYDRATION_CLOCK);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  if (profile.network) await cdp.send('Network.emulateNetworkConditions', { offline: false, ...profile.network });
  if (profile.cpu) await cdp.send('Emulation.setCPUThrottlingRate', { rate: profile.cpu });
  const sizes: Promise<{ kind: string; bytes: number }>[] = [];
  page.on('requestfinished', (req) => {
    const path = new URL(req.url()).pathname;
    const kind = path.endsWith('.wasm') ? 'wasm' : path.endsWith('.js') ? 'js' : '';
    if (kind) sizes.push(req.sizes().then((s) => ({ kind, bytes: s.responseBodySize })));
  });
  await page.goto(`${CONSOLE_URL}${p.path}`);
  await page.waitForFunction(() => (window as unknown as { __hydratedAt?: number }).__hydratedAt !== undefined, null, {
    timeout: 120_000,
    polling: 50,
  });
  const times = await page.evaluate(() => ({
    interactive: (window as unknown as { __hydratedAt: number }).__hydratedAt,
    firstPaint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
  }));
  const files = await Promise.all(sizes);
  await context.close();
  const wasm = files.filter((f) => f.kind === 'wasm');
  return {
    wasmBytes: wasm.reduce((n, f) => n + f.bytes, 0),
    wasmFiles: wasm.length,
    jsBytes: files.filter((f) => f.kind === 'js').reduce((n, f) => n + f.bytes, 0),
    firstPaint: times.firstPaint,
    interactive: times.interactive,
  };
}

test('first load of every page', async ({ browser, page }) => {
  await signIn(page, USERS.admin);
  const state = await page.context().storageState();
  // With no deployment yet there is no deployment page to open.
  const pages = (await consolePages(page)).filter((p) => !p.path.includes('Infinity'));
  const rows: string[] = [];
  for (const p of pages) {
    const cells: string[] = [];
    let weight = '';
    for (const profile of PROFILES) {
      const l = await load(browser, state, p, profile);
      if (!weight) weight = `${(l.wasmBytes / 1024).toFixed(0)} KiB in ${l.wasmFiles} | ${(l.jsBytes / 1024).toFixed(0)} KiB`;
      cells.push(`${(l.firstPaint / 1000).toFixed(2)} / ${(l.interactive / 1000).toFixed(2)}`);
    }
    rows.push(`| ${p.name} | ${weight} | ${cells.join(' | ')} |`);
  }
  const header =
    '| page | WASM sent (files) | JS sent | ' + PROFILES.map((p) => `${p.name}: paint / interactive s`).join(' | ') + ' |';
  console.log(['', header, '|' + ' --- |'.repeat(3 + PROFILES.length), ...rows].join('\n'));
});
