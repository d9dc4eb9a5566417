import { readFileSync } from 'node:fs';
import type { Command } from '../command.js';

export function packageVersion(): string {
  // dist/src/cli/commands -> package root, and src/cli/commands when run from sources.
  for (const rel of ['../../../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'kube-service-tunnel' && pkg.version) return pkg.version;
    } catch {
      /* try the next location */
    }
  }
  return 'unknown';
}

export const command: Command = {
  summary: 'print the version',
  async run() {
    console.log(`kst ${packageVersion()} (node ${process.version})`);
    return 0;
  },
};
