import type { FullConfig } from '@playwright/test';
import { currentDataDir, destroyDataDir, staleDataDirs } from './support/data-dir';

/**
 * Playwright starts `webServer` before global setup, and scripts/e2e-server.sh has
 * already stopped the run recorded in .e2e-data-dir. What can remain are data dirs
 * (and their detached proxy and slot processes) of older runs whose record was lost:
 * stop and delete them, never the current one.
 */
export default async function globalSetup(_config: FullConfig): Promise<void> {
  const current = currentDataDir();
  if (!current) throw new Error('scripts/e2e-server.sh did not record its data dir in end2end/.e2e-data-dir');
  for (const dir of staleDataDirs(current)) {
    console.log(`e2e: removing leftovers of an earlier run: ${dir}`);
    await destroyDataDir(dir);
  }
}
