// "What ran where": kernel-dependent suites say which kernel they ran on, or why they were
// skipped, and `npm test` ends with a table of them (kernel-report-reporter.mjs). A suite
// calls recordKernelSuite once, at load time, e.g.
//   if (!hasSeg6) recordKernelSuite({ suite: 'dataplane IPv6 over seg6', kernel: 'host', outcome: 'skipped', why: 'seg6 absent' });
//   else recordKernelSuite({ suite: 'dataplane IPv6 over seg6', kernel: 'host' });
// Leave `outcome` out for a suite that runs: the table takes passed or failed from jest's own
// result for that test file. Records go to the run's directory (KST_TEST_RUN_DIR, made by
// jest-global-setup.mjs); outside a jest run they are dropped.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@jest/globals';

export type KernelKind = 'host' | 'uml' | 'qemu' | 'guest';

export interface KernelSuiteRecord {
  /** What the suite covers, in a few words: "dataplane gre/gre-lwt/mpls". */
  readonly suite: string;
  /** Where it ran: the host's kernel, or a guest's ('guest' when no guest could be chosen). */
  readonly kernel: KernelKind;
  /** 'skipped' (with why) at load time; leave out to take jest's passed/failed for the file. */
  readonly outcome?: 'passed' | 'skipped' | 'failed';
  readonly why?: string;
}

/** The file the reporter reads: one JSON object a line. */
export const KERNEL_REPORT_FILE = 'kernel-suites.jsonl';

export function recordKernelSuite(record: KernelSuiteRecord): void {
  const dir = process.env.KST_TEST_RUN_DIR;
  if (!dir) return;
  let testPath: string | undefined;
  try {
    testPath = expect.getState().testPath ?? undefined;
  } catch {
    // not inside a test file
  }
  // One short append per record: O_APPEND keeps concurrent test processes' lines whole.
  appendFileSync(join(dir, KERNEL_REPORT_FILE), `${JSON.stringify({ ...record, testPath })}\n`);
}
