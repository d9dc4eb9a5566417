#!/usr/bin/env node
// `kst`: one program, one subcommand per job. Each subcommand lives in commands/<name>.ts
// and exports `run(args): Promise<exitCode>`.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Command } from './command.js';

export type { Command } from './command.js';

const commands: Record<string, () => Promise<Command>> = {
  agent: async () => (await import('./commands/agent.js')).command,
  validate: async () => (await import('./commands/validate.js')).command,
  plan: async () => (await import('./commands/plan.js')).command,
  status: async () => (await import('./commands/status.js')).command,
  cleanup: async () => (await import('./commands/cleanup.js')).command,
  lab: async () => (await import('./commands/lab.js')).command,
  version: async () => (await import('./commands/version.js')).command,
};

async function usage(): Promise<string> {
  const lines = ['usage: kst <command> [options]', '', 'commands:'];
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${(await load()).summary}`);
  lines.push('', 'Run `kst <command> --help` for its options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`kst: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  return (await load()).run(rest);
}

const invokedDirectly = process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`kst: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
