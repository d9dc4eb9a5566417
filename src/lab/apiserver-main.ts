// Command-line entrypoint of the in-repo Kubernetes API server, as the lab runs it inside
// its apiserver namespace:
//
//   node dist/src/lab/apiserver-main.js --listen 192.0.2.2:6443 --seed DIR --kubeconfig FILE
//
// Seeds every *.yaml/*.yml file of DIR (sorted by name), listens, and only then writes the
// kubeconfig (atomically): its appearance tells `kst lab up` the server is ready.
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabApiServer } from './apiserver.js';

export interface ApiServerArgs {
  readonly host: string;
  readonly port: number;
  readonly seedDir?: string;
  readonly kubeconfig?: string;
}

export function parseApiServerArgs(argv: readonly string[]): ApiServerArgs {
  let listen = '127.0.0.1:6443';
  let seedDir: string | undefined;
  let kubeconfig: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if ((a === '--listen' || a === '--seed' || a === '--kubeconfig') && v === undefined) throw new Error(`apiserver: ${a} needs a value`);
    if (a === '--listen') listen = v!;
    else if (a === '--seed') seedDir = v;
    else if (a === '--kubeconfig') kubeconfig = v;
    else throw new Error(`apiserver: unknown argument "${a}" (use --listen HOST:PORT --seed DIR --kubeconfig FILE)`);
    i++;
  }
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`apiserver: --listen must be HOST:PORT, got "${listen}"`);
  return { host: listen.slice(0, i), port, ...(seedDir ? { seedDir } : {}), ...(kubeconfig ? { kubeconfig } : {}) };
}

async function main(): Promise<void> {
  const args = parseApiServerArgs(process.argv.slice(2));
  const server = new LabApiServer({ host: args.host, port: args.port });
  if (args.seedDir) {
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
