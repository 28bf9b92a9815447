import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// `npx playwright test -c playwright.bench.config.ts`: the first-load benchmark
// (bench/), against the same console the suite starts. Figures, not a pass/fail
// gate: timings on these shared machines vary too much to assert.
export default defineConfig({
  ...base,
  testDir: './bench',
  timeout: 900_000,
  reporter: [['list']],
});
