// `npm run bench -- guest-boot [runs]`: the full-kernel test guests (test/support/guest.ts).
// For each backend that can start here, `runs` (default 3) guests running `true`: boot to
// init (bootMs) and boot to power-off (elapsedMs), median and range; the host's load
// average is printed beside them, since both are CPU-bound (QEMU's TCG most of all).
// Prints a table, then one JSON line with the figures.
import { loadavg } from 'node:os';
import { qemuUnavailableReason, runInQemu } from '../test/support/qemu.js';
import { runInUml, umlUnavailableReason } from '../test/support/uml.js';

const runs = Math.max(1, Number(process.argv[2] ?? 3) || 3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const figures: Record<string, unknown> = { runs, loadBefore: Number(loadavg()[0]!.toFixed(1)) };
const rows: string[] = [];
for (const [backend, unavailable, run] of [
  ['uml', umlUnavailableReason, runInUml],
  ['qemu', qemuUnavailableReason, runInQemu],
] as const) {
  const reason = unavailable();
  if (reason) {
    rows.push(`${backend.padEnd(5)} unavailable: ${reason}`);
    figures[backend] = { unavailable: reason };
    continue;
  }
  const boot: number[] = [];
  const total: number[] = [];
  let error: string | undefined;
  for (let i = 0; i < runs; i++) {
    try {
      const r = await run(['true'], { timeoutMs: 180_000 });
      if (r.code !== 0 || r.bootMs === undefined || r.elapsedMs === undefined) throw new Error(`exit ${r.code}: ${r.output}`);
      boot.push(r.bootMs);
      total.push(r.elapsedMs);
    } catch (err) {
      error = (err as Error).message.split('\n').slice(0, 3).join(' | ');
      break;
    }
  }
  const load = Number(loadavg()[0]!.toFixed(1));
  if (boot.length === 0) {
    rows.push(`${backend.padEnd(5)} failed: ${error}`);
    figures[backend] = { error };
    continue;
  }
  rows.push(
    `${backend.padEnd(5)} boot ${median(boot)} ms (${Math.min(...boot)}-${Math.max(...boot)})   boot to power-off ${median(total)} ms (${Math.min(...total)}-${Math.max(...total)})   load ${load}`,
  );
  figures[backend] = { bootMsMedian: median(boot), bootMs: boot, elapsedMsMedian: median(total), elapsedMs: total, loadAfter: load, ...(error ? { error } : {}) };
}
console.log(`full-kernel guests, ${runs} runs of \`true\` each`);
for (const r of rows) console.log(r);
console.log(JSON.stringify(figures));
