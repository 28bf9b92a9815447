import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Written by scripts/e2e-server.sh: the data directory of the server under test. */
export const DATA_DIR_FILE = path.resolve(__dirname, '..', '.e2e-data-dir');
const PREFIX = 'switchyard-e2e.';

export function currentDataDir(): string | undefined {
  try {
    const dir = fs.readFileSync(DATA_DIR_FILE, 'utf8').trim();
    return path.isAbsolute(dir) && path.basename(dir).startsWith(PREFIX) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function matching(dir: string): boolean {
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
export async function destroyDataDir(dir: string): Promise<void> {
  signal(dir, 'TERM');
  for (let i = 0; i < 50 && matching(dir); i++) await new Promise((r) => setTimeout(r, 100));
  if (matching(dir)) signal(dir, 'KILL');
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Data directories of earlier runs that were never torn down (the runner was killed). */
export function staleDataDirs(except: string | undefined): string[] {
  const parents = new Set([os.tmpdir(), process.env.TMPDIR ?? '/tmp']);
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
