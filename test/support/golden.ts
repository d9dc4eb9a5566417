// Golden files: expected output kept beside the tests. A missing file is written (and said);
// UPDATE_GOLDEN=1 rewrites every one on purpose, so a change to the output is a reviewed diff.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from '@jest/globals';

export function expectGolden(dir: string, name: string, actual: string): void {
  const file = join(dir, name);
  const update = process.env.UPDATE_GOLDEN === '1';
  if (update || !existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    if (!update) console.log(`golden: wrote new ${file}`);
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}
