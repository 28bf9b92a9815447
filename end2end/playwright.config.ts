import { defineConfig, devices } from '@playwright/test';
import * as path from 'node:path';
import { CONSOLE_URL } from './support/constants';
import { cleanUpEarlierRuns } from './support/data-dir';

// Paths are taken from end2end/ when relative, as the server script does.
const fromHere = (p: string) => path.resolve(__dirname, p);
const SWITCHYARD_BIN = fromHere(process.env.SWITCHYARD_BIN ?? '../target/release/switchyard');
const LEPTOS_SITE_ROOT = fromHere(process.env.LEPTOS_SITE_ROOT ?? '../target/site');

// A run whose runner was killed never tore down: its console still holds port 3100 and
// Playwright would refuse to start `webServer` before any global setup runs. Clean up
// here, once, in the runner process: the worker and loader processes it forks load
// this file too (while the suite's own server is up) and inherit the marker.
if (!process.env.SWITCHYARD_E2E_RUNNER_CLEANED && process.env.TEST_WORKER_INDEX === undefined) {
  process.env.SWITCHYARD_E2E_RUNNER_CLEANED = '1';
  cleanUpEarlierRuns();
}

export default defineConfig({
  testDir: './tests',
  // The tests share one server and its state: one worker, files in name order
  // (01-…, 02-…), tests in file order.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: process.env.CI ? [['list'], ['line']] : [['list']],
  globalSetup: './global-setup.ts',
  globalTeardown: './global-teardown.ts',
  use: {
    baseURL: CONSOLE_URL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        // Debian's Chromium: no browser can be downloaded on these machines.
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
            '--disable-quic',
          ],
        },
      },
    },
  ],
  webServer: {
    command: 'bash ../scripts/e2e-server.sh',
    cwd: __dirname,
    url: `${CONSOLE_URL}/login`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: { SWITCHYARD_BIN, LEPTOS_SITE_ROOT },
  },
});
