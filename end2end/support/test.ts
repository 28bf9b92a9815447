import { expect, test as base, type BrowserContext, type Page } from '@playwright/test';

/**
 * Playwright's `test`, with two guards on every test:
 *
 * - Every page is watched for Content-Security-Policy violations: the console
 *   sends a strict policy (scripts only from itself or carrying the
 *   response's nonce), and a page the policy breaks — an inline script Leptos
 *   emitted without the nonce, a style the policy refuses — fails the test
 *   that opened it. Chromium reports each refusal on the console.
 * - Every context a test opens with `browser.newContext` is closed when the
 *   test ends, whether or not the test closed it. The suite shares one
 *   browser, and a dashboard left open keeps its WASM, its live stream and
 *   its timers running: eleven such pages left by earlier files were open
 *   when the last file's page crashed (Chromium's "Target crashed") in CI.
 */
export const test = base.extend<{ pageGuard: void }>({
  pageGuard: [
    async ({ context, browser }, use) => {
      const violations: string[] = [];
      const watch = (page: Page) =>
        page.on('console', (m) => {
          if (/Content Security Policy/i.test(m.text())) violations.push(`${page.url()}: ${m.text()}`);
        });
      const watchContext = (c: BrowserContext) => {
        c.pages().forEach(watch);
        c.on('page', watch);
      };
      watchContext(context);
      // Tests that sign two people in at once open contexts of their own.
      const opened: BrowserContext[] = [];
      const newContext = browser.newContext.bind(browser);
      browser.newContext = async (options) => {
        const c = await newContext(options);
        watchContext(c);
        opened.push(c);
        return c;
      };
      try {
        await use();
      } finally {
        browser.newContext = newContext;
        // Closing a context the test closed already does nothing.
        await Promise.all(opened.map((c) => c.close()));
      }
      expect(violations, 'Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
