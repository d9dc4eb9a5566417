// One directory per `jest` run, shared by its test processes through the environment:
// the guest backend choice (guest.ts) and the kernel report's records (kernel-report.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import process from 'node:process';
import { join } from 'node:path';

export default function globalSetup() {
  process.env.KST_TEST_RUN_DIR = mkdtempSync(join(tmpdir(), 'kst-test-run-'));
}
