// Where the repository (and its compiled JavaScript) is, seen from this module, whether it
// runs compiled (dist/src/lab) or from sources under ts-jest (src/lab).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'kube-service-tunnel') return dir;
      } catch {
        /* keep looking */
      }
    }
    dir = dirname(dir);
  }
  throw new Error('kst lab: cannot find the repository root (package.json of kube-service-tunnel)');
}

/** A compiled entrypoint of the repository, e.g. dist("src/lab/echo-server.js"). */
export function distFile(rel: string): string {
  return join(repoRoot(), 'dist', rel);
}

/** Last lines of a log file, for error messages. */
export function tail(file: string | undefined, lines = 8): string {
  if (!file || !existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
