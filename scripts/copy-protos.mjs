// Copies GoBGP's API protos from Debian's golang-github-osrg-gobgp-dev into proto/.
// They are never committed: the package is the source of truth for the API we speak.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const src = process.env.GOBGP_PROTO_DIR ?? '/usr/share/gocode/src/github.com/osrg/gobgp/api';
const dst = new URL('../proto/gobgp/', import.meta.url).pathname;

if (!existsSync(src)) {
  console.error(`copy-protos: ${src} not found; install Debian's golang-github-osrg-gobgp-dev (or set GOBGP_PROTO_DIR)`);
  process.exit(1);
}
mkdirSync(dst, { recursive: true });
const files = readdirSync(src).filter((f) => f.endsWith('.proto'));
for (const f of files) copyFileSync(join(src, f), join(dst, f));
console.log(`copy-protos: ${files.length} protos from ${src} -> proto/gobgp/`);
