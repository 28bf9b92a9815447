import type { FullConfig } from '@playwright/test';
import { currentDataDir, dataDirs, destroyDataDir } from './support/data-dir';

/**
 * Playwright starts `webServer` before global setup, so leftovers that would keep the
 * server from starting are removed earlier (playwright.config.ts, and the server script
 * itself). What can still be found here are data dirs of older runs, never the current
 * one: stop their processes and delete them.
 */
export default async function globalSetup(_config: FullConfig): Promise<void> {
  const current = currentDataDir();
  if (!current) throw new Error('scripts/e2e-server.sh did not record its data dir in end2end/.e2e-data-dir');
  for (const dir of dataDirs(current)) {
    console.log(`e2e: stopping and removing leftovers of an earlier run: ${dir}`);
    destroyDataDir(dir);
  }
}
