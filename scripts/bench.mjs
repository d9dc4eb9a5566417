// `npm run bench -- <name>` runs bench/<name>.ts from the build output (dist/bench/<name>.js).
// Each benchmark prints a readable table and, as its very last line, one JSON object.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const name = process.argv[2];
const dir = new URL('../dist/bench/', import.meta.url).pathname;
const available = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)) : [];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>   (available: ${available.join(', ') || 'none; run npm run build first'})`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--expose-gc', `${dir}${name}.js`, ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
