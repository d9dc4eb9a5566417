// Jest reporter: makes the table, printed after jest's own summary (left untouched: CI reads
// its lines) by jest-global-teardown.mjs, of the kernel-dependent suites recorded by test/support/kernel-report.ts: which kernel each
// ran on (host, uml, qemu), and passed, failed, or skipped and why.
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { join, relative } from 'node:path';

export default class KernelReportReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.results = new Map();
  }

  onTestResult(_test, result) {
    this.results.set(result.testFilePath, result);
  }

  onRunComplete() {
    const dir = process.env.KST_TEST_RUN_DIR;
    if (!dir) return;
    let lines;
    try {
      lines = readFileSync(join(dir, 'kernel-suites.jsonl'), 'utf8').split('\n').filter(Boolean);
    } catch {
      return; // no kernel-dependent suite ran
    }
    const rows = [];
    for (const line of lines) {
      let r;
      try {
        r = JSON.parse(line);
      } catch {
        continue;
      }
      const result = r.testPath ? this.results.get(r.testPath) : undefined;
      let outcome = r.outcome;
      if (!outcome) {
        if (!result) outcome = 'unknown';
        else if (result.testExecError || result.numFailingTests > 0) outcome = 'failed';
        else if (result.numPassingTests === 0) outcome = 'skipped';
        else outcome = 'passed';
      }
      const counts = result && outcome !== 'skipped' ? ` (${result.numPassingTests} passed${result.numFailingTests ? `, ${result.numFailingTests} failed` : ''})` : '';
      rows.push([r.suite, r.kernel, r.testPath ? relative(this.rootDir, r.testPath) : '', `${outcome}${counts}${r.why ? `: ${r.why}` : ''}`]);
    }
    rows.sort((a, b) => a[2].localeCompare(b[2]) || a[0].localeCompare(b[0]));
    const head = ['kernel-dependent suite', 'kernel', 'file', 'outcome'];
    const width = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i].length))));
    const fmt = (r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]))).join('  ');
    // Printed by jest-global-teardown.mjs, which runs after jest's summary: the table ends the run.
    writeFileSync(join(dir, 'kernel-report.txt'), `\nWhat ran where (kernel-dependent suites):\n${fmt(head)}\n${rows.map(fmt).join('\n')}\n`);
  }
}
