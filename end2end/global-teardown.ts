import type { FullConfig } from '@playwright/test';
import * as fs from 'node:fs';
import { currentDataDir, DATA_DIR_FILE, destroyDataDir } from './support/data-dir';

/**
 * `serve` starts switchyard-proxy and the demo slots detached, in their own process
 * groups, so they outlive the console that Playwright stops: stop everything that
 * runs from this run's data dir (the console included), then delete it.
 */
export default async function globalTeardown(_config: FullConfig): Promise<void> {
  const dir = currentDataDir();
  if (!dir) return;
  destroyDataDir(dir);
  fs.rmSync(DATA_DIR_FILE, { force: true });
}
