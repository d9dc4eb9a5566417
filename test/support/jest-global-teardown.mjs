// Ends the run: prints the kernel report (kernel-report-reporter.mjs wrote it; teardown runs
// after jest's summary, so the table is the run's last output) and removes the run's directory.
import { readFileSync, rmSync } from 'node:fs';
import process from 'node:process';
import { join } from 'node:path';

export default function globalTeardown() {
  const dir = process.env.KST_TEST_RUN_DIR;
  if (!dir || !/kst-test-run-/.test(dir)) return;
  try {
    process.stderr.write(readFileSync(join(dir, 'kernel-report.txt'), 'utf8'));
  } catch {
    // no kernel-dependent suite ran
  }
  rmSync(dir, { recursive: true, force: true });
}
