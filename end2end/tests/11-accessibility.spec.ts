import AxeBuilder from '@axe-core/playwright';
import type { Browser, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { USERS } from '../support/constants';
import { environment, signIn } from '../support/console';
import { consolePages, DESKTOP, open, PHONES, type ConsolePage } from '../support/pages';

// Issue 16: every page, at the desktop size and on a phone, in the light and the
// dark colour scheme, has no critical or serious axe violation. Each page is read
// as an admin (every role's pages are among an admin's), plus sign-in and the 404.
// Nothing here changes the server's state but one release request when no release
// exists yet (support/pages.ts).

const SIZES = [
  { name: 'desktop', viewport: DESKTOP },
  { name: 'phone', viewport: PHONES[1] },
] as const;
const SCHEMES = ['light', 'dark'] as const;

type Finding = { page: string; id: string; impact: string; help: string; targets: string[] };

async function audit(page: Page, p: ConsolePage): Promise<Finding[]> {
  await open(page, p);
  const findings: Finding[] = [];
  // A skip link is the first thing Tab reaches, and it leads to the page's <main>.
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => {
    const a = document.activeElement;
    const target = a?.getAttribute('href')?.startsWith('#') ? document.getElementById(a.getAttribute('href')!.slice(1)) : null;
    return { href: a?.getAttribute('href') ?? null, leadsToMain: target?.tagName === 'MAIN' };
  });
  if (!skip.leadsToMain) {
    findings.push({ page: p.name, id: 'skip-link', impact: 'serious', help: `first Tab stop is ${skip.href}, not a link to <main>`, targets: [] });
  }
  // One <h1> per page (axe's own rule only asks for at least one, and only as a moderate issue).
  const h1 = await page.locator('h1').count();
  if (h1 !== 1) findings.push({ page: p.name, id: 'one-h1', impact: 'serious', help: `${h1} <h1> on the page`, targets: [] });
  if (p.name === 'dashboard') {
    // A slot's output is a box that scrolls: shown, so that axe reads it too.
    const env = environment(page);
    await env.getByTestId('show-output-blue').click();
    await expect(env.getByTestId('slot-output')).toBeVisible();
  }
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  for (const v of result.violations) {
    if (v.impact !== 'critical' && v.impact !== 'serious') continue;
    findings.push({
      page: p.name,
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}${n.failureSummary ? ` — ${n.failureSummary.split('\n').slice(1).join(' ').trim()}` : ''}`),
    });
  }
  return findings;
}

async function contextFor(browser: Browser, viewport: { width: number; height: number }, colorScheme: 'light' | 'dark') {
  return browser.newContext({ viewport, colorScheme });
}

for (const size of SIZES) {
  for (const scheme of SCHEMES) {
    test(`no critical or serious axe violation: ${size.name} ${size.viewport.width}×${size.viewport.height}, ${scheme}`, async ({ browser }) => {
      test.setTimeout(180_000);
      const signedOut = await contextFor(browser, size.viewport, scheme);
      const admin = await contextFor(browser, size.viewport, scheme);
      const adminPage = await admin.newPage();
      await signIn(adminPage, USERS.admin);
      const outPage = await signedOut.newPage();
      const findings: Finding[] = [];
      const counts: string[] = [];
      for (const p of await consolePages(adminPage)) {
        const found = await audit(p.signedIn ? adminPage : outPage, p);
        counts.push(`${p.name}=${found.length}`);
        findings.push(...found);
      }
      // The figures the issue's report asks for, on every run.
      console.log(`axe ${size.name} ${scheme}: ${counts.join(' ')}`);
      for (const f of findings) {
        console.log(`  [${f.impact}] ${f.page}: ${f.id} — ${f.help}\n    ${f.targets.join('\n    ')}`);
      }
      await admin.close();
      await signedOut.close();
      expect(findings.map((f) => `${f.page}: ${f.id}`), 'critical or serious accessibility violations').toEqual([]);
    });
  }
}
