import type { Locator } from '@playwright/test';

/**
 * Counts what a person presses on a touch screen: every tap goes through
 * `tap`. Typing (`fill`) is not a tap. A phone journey asserts the count.
 */
export class Taps {
  count = 0;
  readonly log: string[] = [];

  async tap(target: Locator, what: string): Promise<void> {
    this.count += 1;
    this.log.push(what);
    await target.tap();
  }
}
