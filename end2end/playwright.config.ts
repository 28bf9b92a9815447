import { defineConfig, devices } from '@playwright/test';
import * as path from 'node:path';
import { CONSOLE_URL } from './support/constants';

// Paths are taken from end2end/ when relative, as the server script does.
const fromHere = (p: string) => path.resolve(__dirname, p);
const SWITCHYARD_BIN = fromHere(process.env.SWITCHYARD_BIN ?? '../target/release/switchyard');
const LEPTOS_SITE_ROOT = fromHere(process.env.LEPTOS_SITE_ROOT ?? '../target/site');

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
