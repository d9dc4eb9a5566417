// Writes docs/configuration.md from the zod schema (via the build output).
// Run after `npm run build`: node scripts/gen-config-docs.mjs
import { writeFileSync } from 'node:fs';

const { renderConfigDocs } = await import(new URL('../dist/src/config/docs.js', import.meta.url).href);
const target = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(target, renderConfigDocs());
console.log(`wrote ${target.pathname}`);
