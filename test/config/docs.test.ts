import { expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { configSchema, renderConfigDocs } from '../../src/config/index.js';
import { envFieldMap } from '../../src/config/introspect.js';

test('docs/configuration.md is generated from the schema and up to date', () => {
  // If this fails: npm run build && node scripts/gen-config-docs.mjs
  expect(readFileSync('docs/configuration.md', 'utf8')).toBe(renderConfigDocs());
});

test('every field is documented, with its environment variable', () => {
  const doc = renderConfigDocs();
  for (const [env, path] of envFieldMap(configSchema, 'KST_')) {
    expect(doc).toContain(`| \`${path.join('.')}\` |`);
    expect(doc).toContain(`\`${env}\``);
  }
  expect(doc).toContain('| `bgp.peers[].bfdProfile` |');
  expect(doc).toContain('| `bfd.profiles.<name>.minTxMs` |');
});
