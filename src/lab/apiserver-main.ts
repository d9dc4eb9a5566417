// Command-line entrypoint of the in-repo Kubernetes API server, as the lab runs it inside
// its apiserver namespace:
//
//   node dist/src/lab/apiserver-main.js --listen 192.0.2.2:6443 --seed DIR --kubeconfig FILE
//       [--state FILE] [--replaced-at-resource-version N]
//
// Seeds every *.yaml/*.yml file of DIR (sorted by name), listens, and only then writes the
// kubeconfig (atomically): its appearance tells `kst lab up` the server is ready.
// With --state the objects and the resourceVersion counter live in FILE: started again on
// it, the server resumes both (and does not seed again). --replaced-at-resource-version
// simulates a replaced server whose resourceVersions went backwards (see apiserver.ts).
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabApiServer } from './apiserver.js';

export interface ApiServerArgs {
  readonly host: string;
  readonly port: number;
  readonly seedDir?: string;
  readonly kubeconfig?: string;
  readonly stateFile?: string;
  readonly replacedAtResourceVersion?: number;
}

const VALUE_FLAGS = ['--listen', '--seed', '--kubeconfig', '--state', '--replaced-at-resource-version'];

export function parseApiServerArgs(argv: readonly string[]): ApiServerArgs {
  let listen = '127.0.0.1:6443';
  let seedDir: string | undefined;
  let kubeconfig: string | undefined;
  let stateFile: string | undefined;
  let replaced: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (VALUE_FLAGS.includes(a) && v === undefined) throw new Error(`apiserver: ${a} needs a value`);
    if (a === '--listen') listen = v!;
    else if (a === '--seed') seedDir = v;
    else if (a === '--kubeconfig') kubeconfig = v;
    else if (a === '--state') stateFile = v;
    else if (a === '--replaced-at-resource-version') {
      replaced = Number(v);
      if (!Number.isInteger(replaced) || replaced < 1) throw new Error(`apiserver: --replaced-at-resource-version must be a positive integer, got "${v}"`);
    } else throw new Error(`apiserver: unknown argument "${a}" (use --listen HOST:PORT --seed DIR --kubeconfig FILE [--state FILE] [--replaced-at-resource-version N])`);
    i++;
  }
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`apiserver: --listen must be HOST:PORT, got "${listen}"`);
  return {
    host: listen.slice(0, i), port, ...(seedDir ? { seedDir } : {}), ...(kubeconfig ? { kubeconfig } : {}),
    ...(stateFile ? { stateFile } : {}), ...(replaced !== undefined ? { replacedAtResourceVersion: replaced } : {}),
  };
}

async function main(): Promise<void> {
  const args = parseApiServerArgs(process.argv.slice(2));
  const server = new LabApiServer({ host: args.host, port: args.port, stateFile: args.stateFile, replacedAtResourceVersion: args.replacedAtResourceVersion });
  if (server.restored) console.log(`apiserver: resumed ${args.stateFile} at resourceVersion ${server.store.resourceVersion} (not seeding again)`);
  else if (args.seedDir) {
    const files = readdirSync(args.seedDir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(args.seedDir!, f));
    const applied = await server.seedFiles(files);
    console.log(`apiserver: seeded ${applied.length} objects from ${files.length} file(s) in ${args.seedDir}`);
  }
  await server.start();
  if (args.kubeconfig) {
    writeFileSync(`${args.kubeconfig}.tmp`, server.kubeconfigYaml());
    renameSync(`${args.kubeconfig}.tmp`, args.kubeconfig);
  }
  console.log(`apiserver: listening on ${server.url}`);
  const stop = (): void => {
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1]?.endsWith('apiserver-main.js')) {
  main().catch((err: unknown) => {
    console.error(`apiserver: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
