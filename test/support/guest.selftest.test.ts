// The full-kernel guest harness itself (guest.ts), on whichever backend this machine boots
// (User-mode Linux or QEMU; KST_GUEST=uml|qemu forces one): a guest has GRE, MPLS and HMARK
// flow marks, reports exit codes and output faithfully, is killed when it overruns, and
// leaves no process or scratch directory behind. Skipped, with the reason printed, only
// where no guest can start.
import { afterAll, describe, expect, it } from '@jest/globals';
import { GUEST_MODULE_FAILURE, GUEST_TIMEOUT, chooseGuest, guestLeftovers, guestSuite, runInGuest } from './guest.js';
import { runInQemu } from './qemu.js';
import { runInUml } from './uml.js';

const { backend, skip } = await guestSuite('guest harness self-test (GRE, MPLS, HMARK, node)');
const choice = await chooseGuest();
if (backend) console.log(`full-kernel guest: ${backend} (${'how' in choice ? choice.how : ''})`);
const it_ = skip ? it.skip : it;

/** Killed processes take a moment to become zombies: look again for up to 5 s. */
async function leftoversSettled(): Promise<ReturnType<typeof guestLeftovers>> {
  for (let i = 0; ; i++) {
    const left = guestLeftovers();
    if ((left.dirs.length === 0 && left.pids.length === 0) || i >= 50) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe(`runInGuest (${backend ?? 'no guest'})`, () => {
  afterAll(async () => {
    if (!skip) expect(await leftoversSettled()).toEqual({ dirs: [], pids: [] });
  });

  it_('boots a guest where two namespaces talk over GRE and MPLS and HMARK steers flows', async () => {
    const r = await runInGuest(['sh', 'test/support/uml-guest/selftest.sh'], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`guest scenario exited ${r.code}:\n${r.output}`);
    for (const check of ['ok veth', 'ok gre ping', 'ok mpls route', 'ok mpls ping', 'ok hmark ping', 'ok node v']) {
      expect(r.output).toContain(check);
    }
    expect(r.output).toMatch(/2 packets transmitted, 2 received/);
    console.log(`${r.backend} guest: boot ${r.bootMs} ms, whole GRE/MPLS/HMARK scenario ${r.elapsedMs} ms`);
    expect(r.bootMs).toBeGreaterThan(0);
  }, 200_000);

  it_('returns the exit code and combined output; / is read-only, /tmp writable, env set', async () => {
    const script = [
      'echo to-stdout; echo to-stderr >&2',
      'echo "$KST_SELFTEST" "$KST_IN_GUEST" "$KST_GUEST" "$(pwd)"',
      'if touch package.json.guest-probe 2>/dev/null; then echo root-writable; fi',
      'echo scratch > /tmp/probe && cat /tmp/probe',
      'exit 7',
    ].join('\n');
    const r = await runInGuest(['sh', '-c', script], { env: { KST_SELFTEST: "it's quoted" }, timeoutMs: 120_000 });
    expect(r.code).toBe(7);
    expect(r.output).toContain('to-stdout\n');
    expect(r.output).toContain('to-stderr\n');
    expect(r.output).toContain(`it's quoted 1 ${r.backend} ${process.cwd()}\n`);
    expect(r.output).not.toContain('root-writable');
    expect(r.output).toContain('scratch\n');
  }, 140_000);

  it_('kills a guest that overruns its timeout and reports 124', async () => {
    // A slow QEMU boot may not reach the command by then: the guest must be killed all the same.
    const r = await runInGuest(['sleep', '600'], { timeoutMs: 8_000 });
    expect(r.code).toBe(GUEST_TIMEOUT);
    expect(r.timedOut).toBe(true);
    expect(r.output).toContain('guest killed after 8000 ms');
    expect(r.elapsedMs).toBeLessThan(30_000);
    expect((await leftoversSettled()).pids).toEqual([]);
  }, 90_000);

  it_('reports a module that does not load without running the command', async () => {
    const r = await runInGuest(['sh', '-c', 'echo ran'], { modules: ['kst_no_such_module'], timeoutMs: 120_000 });
    expect(r.code).toBe(GUEST_MODULE_FAILURE);
    expect(r.output).toContain('kst_no_such_module');
    expect(r.output).not.toContain('ran\n');
  }, 140_000);

  it('rejects bad input with a clear error before booting', async () => {
    for (const run of [runInUml, runInQemu]) {
      await expect(run([])).rejects.toThrow(/argv is empty/);
      await expect(run(['true'], { env: { 'BAD NAME': 'x' } })).rejects.toThrow(/bad environment variable name "BAD NAME"/);
      await expect(run(['true'], { modules: ['x;reboot'] })).rejects.toThrow(/bad module name/);
    }
  });
});
