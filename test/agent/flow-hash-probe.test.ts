// The flow-hash backend choice (dataplane.flowHash): the pure decision for every setting and
// probe outcome, the probes' handling of odd tool output, what the agent logs and reports,
// and the real probes on this host's kernel (nftables works) and under a full-kernel guest:
// User-mode Linux (nf_tables without the inet family: iptables-legacy HMARK) or QEMU with
// Debian's kernel (nftables works; HMARK too until it is unloaded).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  chooseFlowHash,
  decideFlowHash,
  probeIptablesLegacy,
  probeNftables,
  reportFlowHash,
  type BackendProbe,
  type FlowHashDecision,
  type FlowHashSetting,
} from '../../src/dataplane/flow-hash-probe.js';
import { configSchema } from '../../src/config/index.js';
import { NetnsSet } from '../../src/lab/index.js';
import { MemoryEventSink, silentLogger } from '../../src/observe/index.js';
import { CommandError, runCommand, type CommandRunner } from '../../src/system/index.js';
import { guestSuite, runInGuest } from '../support/guest.js';

const OK: BackendProbe = { ok: true };
const NO_INET: BackendProbe = { ok: false, why: 'nft -c -f - exited 1: Error: Could not process rule: Operation not supported' };
const NO_HMARK: BackendProbe = { ok: false, why: 'iptables-legacy-restore --test --noflush: Warning: Extension HMARK revision 0 not supported' };

describe('decideFlowHash', () => {
  const cases: [FlowHashSetting, BackendProbe | undefined, BackendProbe | undefined, string][] = [
    ['auto', OK, undefined, 'nftables'],
    ['auto', OK, NO_HMARK, 'nftables'],
    ['auto', NO_INET, OK, 'iptables-legacy fallback'],
    ['auto', NO_INET, NO_HMARK, 'error'],
    ['auto', NO_INET, undefined, 'error'],
    ['nftables', OK, undefined, 'nftables'],
    ['nftables', NO_INET, OK, 'nftables problem'],
    ['iptables-legacy', undefined, OK, 'iptables-legacy'],
    ['iptables-legacy', OK, NO_HMARK, 'iptables-legacy problem'],
  ];
  const summary = (d: FlowHashDecision): string => (!d.ok ? 'error' : `${d.backend}${d.fellBack ? ' fallback' : ''}${d.problem ? ' problem' : ''}`);
  for (const [setting, nftables, xt, want] of cases) {
    test(`${setting}, nftables ${nftables ? (nftables.ok ? 'ok' : 'fails') : 'not probed'}, iptables-legacy ${xt ? (xt.ok ? 'ok' : 'fails') : 'not probed'} -> ${want}`, () => {
      const results = { ...(nftables ? { nftables } : {}), ...(xt ? { 'iptables-legacy': xt } : {}) };
      expect(summary(decideFlowHash(setting, results))).toBe(want);
    });
  }

  test('messages name the failures', () => {
    const fallback = decideFlowHash('auto', { nftables: NO_INET, 'iptables-legacy': OK });
    expect(fallback.ok && fallback.reason).toContain('Operation not supported');
    const none = decideFlowHash('auto', { nftables: NO_INET, 'iptables-legacy': NO_HMARK });
    expect(!none.ok && none.error).toMatch(/nftables: .*Operation not supported.*; iptables-legacy: .*HMARK revision 0 not supported/);
    const explicit = decideFlowHash('nftables', { nftables: NO_INET });
    expect(explicit.ok && explicit.problem).toMatch(/dataplane.flowHash is nftables, but .*Operation not supported/);
  });

  test('the config field defaults to auto and rejects other values', () => {
    expect(configSchema.parse({}).dataplane.flowHash).toBe('auto');
    expect(configSchema.parse({ dataplane: { flowHash: 'iptables-legacy' } }).dataplane.flowHash).toBe('iptables-legacy');
    expect(configSchema.safeParse({ dataplane: { flowHash: 'iptables' } }).success).toBe(false);
  });
});

describe('probes with a scripted runner', () => {
  const scripted = (reply: (file: string) => { code: number; stderr?: string } | 'missing'): { run: CommandRunner; calls: string[] } => {
    const calls: string[] = [];
    const run: CommandRunner = async (file, args) => {
      calls.push(`${file} ${args.join(' ')}`);
      const r = reply(file);
      if (r === 'missing') throw new CommandError([file, ...args], { code: -1, stdout: '', stderr: `Error: spawn ${file} ENOENT` });
      return { code: r.code, stdout: '', stderr: r.stderr ?? '' };
    };
    return { run, calls };
  };

  test('a missing program is a failure with its name, not a crash', async () => {
    const { run } = scripted(() => 'missing');
    const r = await probeNftables({ run });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.why).toMatch(/^nft -c -f - could not run: .*ENOENT/);
  });

  test('a test restore that exits 0 but warns about a missing HMARK module fails', async () => {
    const { run, calls } = scripted((file) => (file.endsWith('-restore') ? { code: 0, stderr: 'Warning: Extension HMARK revision 0 not supported, missing kernel module?\n' } : { code: 0 }));
    const r = await probeIptablesLegacy({ run });
    expect(!r.ok && r.why).toMatch(/^iptables-legacy-restore --test --noflush: Warning: Extension HMARK/);
    expect(calls).toEqual(['iptables-legacy -t mangle -L -n', 'iptables-legacy-restore --test --noflush']);
  });

  test('both families must work: an ip6tables failure fails the backend', async () => {
    const { run } = scripted((file) => (file.startsWith('ip6tables') ? { code: 3, stderr: "ip6tables v1.8.9 (legacy): can't initialize ip6tables table `mangle': Table does not exist\n" } : { code: 0 }));
    const r = await probeIptablesLegacy({ run });
    expect(!r.ok && r.why).toMatch(/^ip6tables-legacy -t mangle -L -n exited 3: .*Table does not exist/);
  });

  test('auto probes iptables-legacy only when nftables fails; an explicit value probes only itself', async () => {
    const nftWorks = scripted(() => ({ code: 0 }));
    expect((await chooseFlowHash('auto', { run: nftWorks.run })).ok).toBe(true);
    expect(nftWorks.calls).toEqual(['nft -c -f -']);
    const nftFails = scripted((file) => (file === 'nft' ? { code: 1, stderr: 'Error: Could not process rule: Operation not supported\n' } : { code: 0 }));
    const d = await chooseFlowHash('auto', { run: nftFails.run });
    expect(d.ok && d.backend).toBe('iptables-legacy');
    expect(nftFails.calls[0]).toBe('nft -c -f -');
    expect(nftFails.calls.length).toBe(5);
    const explicit = scripted(() => ({ code: 0 }));
    await chooseFlowHash('iptables-legacy', { run: explicit.run });
    expect(explicit.calls.some((c) => c.startsWith('nft'))).toBe(false);
  });
});

describe('reportFlowHash', () => {
  const report = (d: FlowHashDecision) => {
    const events = new MemoryEventSink();
    const backend = reportFlowHash(d, 'tunnel-1', silentLogger(), events);
    return { backend, events: events.events.map((e) => `${e.type} ${e.ref.kind}/${e.ref.name} ${e.reason}`), messages: events.events.map((e) => e.message) };
  };

  test('nftables chosen: no Event', () => {
    expect(report(decideFlowHash('auto', { nftables: OK }))).toEqual({ backend: 'nftables', events: [], messages: [] });
  });

  test('auto fell back: a Warning on the Node that warns about mixed clusters', () => {
    const r = report(decideFlowHash('auto', { nftables: NO_INET, 'iptables-legacy': OK }));
    expect(r.backend).toBe('iptables-legacy');
    expect(r.events).toEqual(['Warning Node/tunnel-1 FlowHashFallback']);
    expect(r.messages[0]).toMatch(/Operation not supported.*every tunnel node/);
  });

  test('an explicit backend that cannot work is used, with a Warning', () => {
    const r = report(decideFlowHash('iptables-legacy', { 'iptables-legacy': NO_HMARK }));
    expect(r.backend).toBe('iptables-legacy');
    expect(r.events).toEqual(['Warning Node/tunnel-1 FlowHashUnavailable']);
  });

  test('nothing works: a Warning naming both failures, and the agent keeps running with nftables', () => {
    const r = report(decideFlowHash('auto', { nftables: NO_INET, 'iptables-legacy': NO_HMARK }));
    expect(r.backend).toBe('nftables');
    expect(r.events).toEqual(['Warning Node/tunnel-1 FlowHashUnavailable']);
    expect(r.messages[0]).toMatch(/nftables: .*iptables-legacy: /);
  });
});

describe('on this host kernel, in a fresh namespace', () => {
  const set = new NetnsSet();
  let netns = '';
  beforeAll(async () => {
    netns = await set.create('kstfh');
  });
  afterAll(() => set.destroy());

  test('auto picks nftables; iptables-legacy also works here; nothing is left behind', async () => {
    const d = await chooseFlowHash('auto', { netns });
    expect(d).toEqual({ ok: true, backend: 'nftables', reason: expect.stringContaining('auto') as unknown as string, fellBack: false });
    expect(await probeIptablesLegacy({ netns })).toEqual({ ok: true });
    expect((await runCommand('nft', ['list', 'tables'], { netns })).stdout.trim()).toBe('');
    expect((await runCommand('iptables-legacy-save', [], { netns })).stdout).not.toMatch(/KST-PROBE/);
    expect((await runCommand('ip6tables-legacy-save', [], { netns })).stdout).not.toMatch(/KST-PROBE/);
  });
});

const SCENARIO = join('dist', 'test', 'agent', 'scenarios', 'flow-hash-probe.js');
const guest = await guestSuite(
  'agent flow-hash probe on a guest kernel',
  existsSync(SCENARIO) ? undefined : `${SCENARIO} is missing: run \`npm test\` (it compiles first) or \`npx tsc -p tsconfig.json\``,
);

(guest.skip ? describe.skip : describe)(`under a full-kernel guest (${guest.backend ?? 'no guest'})`, () => {
  test('the probes see what the guest kernel has; without HMARK the xtables backend fails', async () => {
    const r = await runInGuest([process.execPath, SCENARIO], { timeoutMs: 240_000, modules: ['xt_HMARK'] });
    console.log(`${r.backend} guest flow-hash probe: boot ${r.bootMs} ms, total ${r.elapsedMs} ms`);
    const line = /^RESULT (.*)$/m.exec(r.output);
    if (r.code !== 0 || !line) throw new Error(`guest exit ${r.code}, output:\n${r.output}`);
    const out = JSON.parse(line[1]!) as {
      auto: FlowHashDecision;
      explicitNft: FlowHashDecision;
      leftovers: { nftTables: string; xtProbeChains: boolean };
      withoutHmark: { xt: BackendProbe; auto: FlowHashDecision };
    };
    expect(out.leftovers).toEqual({ nftTables: '', xtProbeChains: false });
    expect(out.withoutHmark.xt.ok).toBe(false);
    if (r.backend === 'uml') {
      // nf_tables without the inet family: auto falls back, explicit nftables is reported, and
      // without HMARK nothing works.
      expect(out.auto).toMatchObject({ ok: true, backend: 'iptables-legacy', fellBack: true });
      expect(out.auto.ok && out.auto.reason).toMatch(/not supported/i);
      expect(out.explicitNft).toMatchObject({ ok: true, backend: 'nftables', fellBack: false });
      expect(out.explicitNft.ok && out.explicitNft.problem).toMatch(/nftables cannot hash flows on this node/);
      expect(out.withoutHmark.auto.ok).toBe(false);
      expect(!out.withoutHmark.auto.ok && out.withoutHmark.auto.error).toMatch(/nftables: .*; iptables-legacy: .*HMARK/);
    } else {
      // Debian's full kernel has nf_tables inet: nftables is chosen, before and after HMARK goes.
      expect(out.auto).toMatchObject({ ok: true, backend: 'nftables', fellBack: false });
      expect(out.explicitNft).toMatchObject({ ok: true, backend: 'nftables', fellBack: false });
      expect(out.explicitNft.ok && out.explicitNft.problem).toBeUndefined();
      expect(out.withoutHmark.auto).toMatchObject({ ok: true, backend: 'nftables' });
      expect(!out.withoutHmark.xt.ok && out.withoutHmark.xt.why).toMatch(/HMARK/);
    }
  }, 260_000);
});
