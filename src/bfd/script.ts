// Where the compiled entry points of this area live (standalone.js, worker.js): a process or
// a worker thread needs JavaScript, but jest loads this module from the TypeScript sources.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The compiled `name` (e.g. "worker.js") next to this module, or in dist/ when run from src/. */
export function builtScript(name: string): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const js = `${here}${name}`;
  if (existsSync(js)) return js;
  // Loaded from the TypeScript sources (jest): use the build output.
  const built = here.replace(/\/src\/bfd\/$/, '/dist/src/bfd/') + name;
  if (existsSync(built)) return built;
  throw new Error(`BFD: ${built} not found; run "npx tsc -p tsconfig.json" (npm test does) first`);
}
