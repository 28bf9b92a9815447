import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Written by scripts/e2e-server.sh: the data directory of the server under test. */
export const DATA_DIR_FILE = path.resolve(__dirname, '..', '.e2e-data-dir');
/** scripts/e2e-server.sh makes its data dirs with `mktemp -d $TMPDIR/switchyard-e2e.XXXXXXXX`. */
const PREFIX = 'switchyard-e2e.';

export function currentDataDir(): string | undefined {
  try {
    const dir = fs.readFileSync(DATA_DIR_FILE, 'utf8').trim();
    return path.isAbsolute(dir) && path.basename(dir).startsWith(PREFIX) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function running(dir: string): boolean {
  try {
    // No shell: a `sh -c` whose command line holds the pattern would match itself.
    execFileSync('pgrep', ['-f', '--', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function signal(dir: string, sig: 'TERM' | 'KILL'): void {
  try {
    execFileSync('pkill', [`-${sig}`, '-f', '--', dir], { stdio: 'ignore' });
  } catch {
    // exit status 1: nothing matched
  }
}

/**
 * Stops every process whose command line holds `dir` (the console, the detached
 * switchyard-proxy, the demo slots: they all name paths inside it) and deletes it.
 */
export function destroyDataDir(dir: string): void {
  signal(dir, 'TERM');
  for (let i = 0; i < 50 && running(dir); i++) sleepSync(100);
  if (running(dir)) {
    signal(dir, 'KILL');
    for (let i = 0; i < 20 && running(dir); i++) sleepSync(100);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Data dirs of this suite in the temp dir, except `except`. */
export function dataDirs(except?: string): string[] {
  const parents = new Set([os.tmpdir(), process.env.TMPDIR || '/tmp']);
  const found: string[] = [];
  for (const parent of parents) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      const dir = path.join(parent, name);
      if (name.startsWith(PREFIX) && dir !== except) found.push(dir);
    }
  }
  return found;
}

/**
 * Stops and deletes what earlier runs left behind: a runner that was killed never
 * tears down, and its console would keep port 3100 (Playwright then refuses to
 * start), its proxy ports 3180/3181/3182.
 */
export function cleanUpEarlierRuns(log: (msg: string) => void = console.log): void {
  const dirs = new Set(dataDirs());
  const recorded = currentDataDir();
  if (recorded) dirs.add(recorded);
  for (const dir of dirs) {
    log(`e2e: stopping and removing leftovers of an earlier run: ${dir}`);
    destroyDataDir(dir);
  }
  fs.rmSync(DATA_DIR_FILE, { force: true });
}
