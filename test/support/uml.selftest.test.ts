// The User-mode Linux harness itself: a guest boots, has GRE, MPLS and HMARK flow marks,
// reports exit codes and output faithfully, is killed when it overruns, and leaves no
// process or scratch directory behind. Skipped (with the reason printed) only where UML
// cannot start.
import { afterAll, describe, expect, it } from '@jest/globals';
import { UML_MODULE_FAILURE, UML_TIMEOUT, runInUml, umlLeftovers, umlUnavailableReason } from './uml.js';

const reason = umlUnavailableReason();
if (reason) console.warn(`skipping User-mode Linux self-test: ${reason}`);
const it_ = reason ? it.skip : it;

/** Killed processes take a moment to become zombies: look again for up to 5 s. */
async function leftoversSettled(): Promise<ReturnType<typeof umlLeftovers>> {
  for (let i = 0; ; i++) {
    const left = umlLeftovers();
    if ((left.dirs.length === 0 && left.pids.length === 0) || i >= 50) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('runInUml', () => {
  afterAll(async () => {
    if (!reason) expect(await leftoversSettled()).toEqual({ dirs: [], pids: [] });
  });

  it_('boots a guest where two namespaces talk over GRE and MPLS and HMARK steers flows', async () => {
    const r = await runInUml(['sh', 'test/support/uml-guest/selftest.sh'], { timeoutMs: 90_000 });
    if (r.code !== 0) throw new Error(`guest scenario exited ${r.code}:\n${r.output}`);
    for (const check of ['ok veth', 'ok gre ping', 'ok mpls route', 'ok mpls ping', 'ok hmark ping', 'ok node v']) {
      expect(r.output).toContain(check);
    }
    expect(r.output).toMatch(/2 packets transmitted, 2 received/);
    console.log(`UML guest: boot ${r.bootMs} ms, whole GRE/MPLS/HMARK scenario ${r.elapsedMs} ms`);
    expect(r.bootMs).toBeGreaterThan(0);
  });

  it_('returns the exit code and combined output; / is read-only, /tmp writable, env set', async () => {
    const script = [
      'echo to-stdout; echo to-stderr >&2',
      'echo "$KST_SELFTEST" "$KST_IN_UML" "$(pwd)"',
      'if touch package.json.uml-probe 2>/dev/null; then echo root-writable; fi',
      'echo scratch > /tmp/probe && cat /tmp/probe',
      'exit 7',
    ].join('\n');
    const r = await runInUml(['sh', '-c', script], { env: { KST_SELFTEST: "it's quoted" }, timeoutMs: 60_000 });
    expect(r.code).toBe(7);
    expect(r.output).toContain('to-stdout\n');
    expect(r.output).toContain('to-stderr\n');
    expect(r.output).toContain(`it's quoted 1 ${process.cwd()}\n`);
    expect(r.output).not.toContain('root-writable');
    expect(r.output).toContain('scratch\n');
  });

  it_('kills a guest that overruns its timeout and reports 124', async () => {
    const r = await runInUml(['sleep', '600'], { timeoutMs: 5_000 });
    expect(r.code).toBe(UML_TIMEOUT);
    expect(r.timedOut).toBe(true);
    expect(r.output).toContain('guest killed after 5000 ms');
    expect(r.elapsedMs).toBeLessThan(30_000);
    expect((await leftoversSettled()).pids).toEqual([]);
  });

  it_('reports a module that does not load without running the command', async () => {
    const r = await runInUml(['sh', '-c', 'echo ran'], { modules: ['kst_no_such_module'], timeoutMs: 60_000 });
    expect(r.code).toBe(UML_MODULE_FAILURE);
    expect(r.output).toContain('kst_no_such_module');
    expect(r.output).not.toContain('ran\n');
  });

  it('rejects bad input with a clear error before booting', async () => {
    await expect(runInUml([])).rejects.toThrow(/argv is empty/);
    await expect(runInUml(['true'], { env: { 'BAD NAME': 'x' } })).rejects.toThrow(/bad environment variable name "BAD NAME"/);
    await expect(runInUml(['true'], { modules: ['x;reboot'] })).rejects.toThrow(/bad module name/);
  });
});
