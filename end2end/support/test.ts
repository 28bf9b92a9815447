import { expect, test as base, type BrowserContext, type Page } from '@playwright/test';

/**
 * Playwright's `test`, with every page watched for Content-Security-Policy
 * violations: the console sends a strict policy (scripts only from itself or
 * carrying the response's nonce), and a page the policy breaks — an inline
 * script Leptos emitted without the nonce, a style the policy refuses — fails
 * the test that opened it. Chromium reports each refusal on the console.
 */
export const test = base.extend<{ cspGuard: void }>({
  cspGuard: [
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
      const newContext = browser.newContext.bind(browser);
      browser.newContext = async (options) => {
        const c = await newContext(options);
        watchContext(c);
        return c;
      };
      try {
        await use();
      } finally {
        browser.newContext = newContext;
      }
      expect(violations, 'Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
