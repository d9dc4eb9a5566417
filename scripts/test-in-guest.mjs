// `npm run test:guest -- <jest args>`: runs jest INSIDE the QEMU guest, on Debian's full
// kernel (test/support/qemu.ts), to show the host-kernel suites pass on a kernel that has
// what this host may lack (seg6, GRE, MPLS...). The guest's kernel loads modules on demand,
// like an installed system; jest runs in band, the guest's 2 CPUs left to the namespaces'
// processes (echo servers, clients) the suites start.
//   npm run test:guest -- test/dataplane/vxlan-e2e.test.ts
//   KST_GUEST_MEM_MB (default 3072), KST_GUEST_TIMEOUT_S (default 1800), KST_GUEST_CPUS (default 2)
import { existsSync } from 'node:fs';
import process from 'node:process';

const harness = new URL('../dist/test/support/qemu.js', import.meta.url);
if (!existsSync(harness)) {
  console.error('test:guest: dist/ is missing: run `npm run build` first');
  process.exit(2);
}
const { qemuUnavailableReason, runInQemu } = await import(harness.href);
const reason = qemuUnavailableReason();
if (reason) {
  console.error(`test:guest: no QEMU guest here: ${reason}`);
  process.exit(2);
}
const args = process.argv.slice(2);
if (args.length === 0) {
  console.error('usage: npm run test:guest -- <jest test files or args>');
  process.exit(2);
}
const memMb = Number(process.env.KST_GUEST_MEM_MB ?? 3072);
const timeoutMs = Number(process.env.KST_GUEST_TIMEOUT_S ?? 1800) * 1000;
const cpus = Number(process.env.KST_GUEST_CPUS ?? 2);
console.log(`test:guest: jest ${args.join(' ')} in a QEMU guest (${cpus} CPUs, ${memMb} MiB, up to ${timeoutMs / 1000} s)`);
const r = await runInQemu([process.execPath, 'node_modules/jest/bin/jest.js', '--runInBand', '--ci', ...args], {
  memMb,
  timeoutMs,
  moduleAutoload: true,
  cpus,
  env: { NODE_OPTIONS: '--experimental-vm-modules', CI: process.env.CI ?? 'true' },
});
process.stdout.write(r.output);
console.log(`test:guest: guest exit ${r.code}${r.timedOut ? ' (timed out)' : ''}; boot ${r.bootMs} ms, whole run ${r.elapsedMs} ms`);
process.exit(r.code);
