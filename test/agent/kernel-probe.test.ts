// The agent knows its kernel (issue 17): the real probe on this host's kernel, the probe's
// handling of a machine where it cannot run, what each mode needs per role, what the model
// does with a node that lacks it (no announcement, no programming, a problem), and the
// must-show: a real agent started here in gre-lwt mode on a tunnel node reports the missing
// GRE support in `kst status` and a Node Event, and its data plane does not retry.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { assessKernel, registerKernelMetrics } from '../../src/agent/kernel-report.js';
import { describeFeatures, namespaceProbeBlocked, probeKernelFeatures } from '../../src/agent/kernel-probe.js';
import { main } from '../../src/cli/main.js';
import { configSchema } from '../../src/config/index.js';
import { createDriver, featuresToProbe, kernelLimits, kernelNeeds, missingNeeds, planKernel, KERNEL_FEATURES, type KernelFeature, type KernelFeatures } from '../../src/dataplane/index.js';
import { NetnsSet } from '../../src/lab/index.js';
import { IncrementalModel, type EncapMode } from '../../src/model/index.js';
import { metricsRegistry, type StatusReport } from '../../src/observe/index.js';
import { runCommand, type CommandRunner } from '../../src/system/index.js';
import { captureConsole } from '../support/console.js';
import { ep, node, pod, settings, slice, tunnelService } from '../model/helpers.js';
import { planParams, testConfig } from '../dataplane/fixtures.js';

const out = captureConsole();

/** This host kernel's seg6 lightweight tunnel, from its build config (two builds are seen: KERNEL.md). */
function hostHasSeg6(): boolean | undefined {
  try {
    return /^CONFIG_IPV6_SEG6_LWTUNNEL=y/m.test(gunzipSync(readFileSync('/proc/config.gz')).toString());
  } catch {
    return undefined;
  }
}

const all = (state: 'present' | 'absent', except: Partial<Record<KernelFeature, 'present' | 'absent'>> = {}): KernelFeatures =>
  Object.fromEntries(KERNEL_FEATURES.map((f) => [f, (except[f] ?? state) === 'present' ? { state: 'present' } : { state: 'absent', why: 'Error: Unknown device type.' }]));
/** This host kernel as KERNEL.md describes build B. */
const BUILD_B = all('present', { gre: 'absent', 'gre-external': 'absent', ipip: 'absent', 'mpls-routing': 'absent', 'mpls-iptunnel': 'absent', 'seg6-lwt': 'absent' });
const cfg = (mode: EncapMode, flowHash: 'auto' | 'nftables' | 'iptables-legacy' = 'auto') => configSchema.parse({ encapsulation: { mode }, dataplane: { flowHash } });

describe('on this host kernel (real probes, each in a throwaway namespace)', () => {
  let features: KernelFeatures;
  // A generous deadline: this asserts what the kernel has, and on a busy machine (other
  // suites holding the rtnl lock with large batches) one check can wait seconds.
  beforeAll(async () => {
    features = await probeKernelFeatures(undefined, { timeoutMs: 60_000 });
  }, 240_000);

  test('VXLAN external, nexthop objects and nft inet are present; GRE and MPLS are absent, saying why', () => {
    if (Object.values(features).some((f) => f.state === 'unknown')) throw new Error(`a check could not run: ${describeFeatures(features)}`);
    for (const f of ['vxlan', 'vxlan-external', 'nexthop-objects', 'nft-inet'] as const) expect(`${f} ${features[f]?.state}`).toBe(`${f} present`);
    for (const f of ['gre', 'gre-external', 'mpls-routing', 'mpls-iptunnel'] as const) {
      expect(`${f} ${features[f]?.state}`).toBe(`${f} absent`);
      expect(features[f]?.state === 'absent' && features[f].why).toBeTruthy();
    }
    expect(features['gre-external']).toEqual({ state: 'absent', why: 'Error: Unknown device type.' });
    const seg6 = hostHasSeg6();
    if (seg6 !== undefined) expect(features['seg6-lwt']?.state).toBe(seg6 ? 'present' : 'absent');
    console.info(`kernel probe here: ${describeFeatures(features)}`);
  });

  test('nothing is left in the node namespace', async () => {
    const links = (await runCommand('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/kstp-/);
  });
});

describe('a probe that cannot run says why, and limits nothing', () => {
  const runner = (reply: (file: string, args: readonly string[]) => { code: number; stderr: string } | 'missing'): CommandRunner =>
    async (file, args) => {
      const r = reply(file, args);
      if (r === 'missing') throw new Error(`spawn ${file} ENOENT`);
      return { code: r.code, stdout: '', stderr: r.stderr };
    };

  test('no unshare: every namespace check is unknown with the reason', async () => {
    const run = runner((file) => (file === 'unshare' ? 'missing' : { code: 0, stderr: '' }));
    expect(await namespaceProbeBlocked({ run })).toMatch(/unshare --net.*ENOENT/);
    const f = await probeKernelFeatures(['gre-external', 'nexthop-objects', 'nft-inet'], { run });
    expect(f['gre-external']).toEqual({ state: 'unknown', why: expect.stringMatching(/throwaway network namespace.*ENOENT/) as unknown as string });
    expect(f['nft-inet']).toEqual({ state: 'present' });
    // Unknown is reported as missing but does not stop the node from trying.
    const a = assessKernel(cfg('gre-lwt'), f);
    expect(a.missing.map((m) => m.anyOf.join('|'))).toContain('gre-external');
    expect(a.limits).toEqual({});
  });

  test('no permission and a hung command are unknown too, the latter naming the deadline', async () => {
    const denied = runner(() => ({ code: 1, stderr: 'unshare: unshare failed: Operation not permitted\n' }));
    expect(await namespaceProbeBlocked({ run: denied })).toMatch(/Operation not permitted/);
    const hung = runner((file, args) => (args.includes('show') ? { code: 0, stderr: '' } : { code: 128, stderr: 'killed by SIGKILL' }));
    expect((await probeKernelFeatures(['gre'], { run: hung, timeoutMs: 1234 })).gre).toEqual({ state: 'unknown', why: 'no answer within 1234 ms' });
  });
});

describe('what each mode needs (pure)', () => {
  const needed = (mode: EncapMode) =>
    kernelNeeds(cfg(mode))
      .filter((n) => !n.reportOnly)
      .map((n) => `${n.role}${n.vipFamily ? `/IPv${n.vipFamily}` : ''}: ${n.anyOf.join('|')}`);

  const cases: [EncapMode, string[]][] = [
    ['vxlan-lwt', ['tunnel: vxlan-external', 'tunnel: nexthop-objects', 'serving: vxlan']],
    ['gre-lwt', ['tunnel: gre-external', 'tunnel: nexthop-objects', 'tunnel/IPv6: seg6-lwt', 'serving: gre-external']],
    ['gre', ['tunnel: gre', 'tunnel: nexthop-objects', 'tunnel/IPv6: seg6-lwt', 'serving: gre']],
    ['mpls', ['tunnel: mpls-iptunnel', 'tunnel: nexthop-objects', 'serving: mpls-routing']],
  ];
  for (const [mode, want] of cases) test(`${mode} needs`, () => expect(needed(mode)).toEqual(want));

  test('the flow hash: auto takes either backend; an explicit one needs its own', () => {
    const flow = (s: 'auto' | 'nftables' | 'iptables-legacy') => kernelNeeds(cfg('vxlan-lwt', s)).find((n) => n.reportOnly)?.anyOf;
    expect(flow('auto')).toEqual(['nft-inet', 'xt-hmark']);
    expect(flow('nftables')).toEqual(['nft-inet']);
    expect(flow('iptables-legacy')).toEqual(['xt-hmark']);
    const noNft = all('present', { 'nft-inet': 'absent' });
    expect(missingNeeds(kernelNeeds(cfg('vxlan-lwt')), noNft)).toEqual([]);
    expect(missingNeeds(kernelNeeds(cfg('vxlan-lwt', 'nftables')), noNft).map((m) => m.anyOf)).toEqual([['nft-inet']]);
    // Reported, but the flow hash keeps its own handling (dataplane/flow-hash-probe.ts).
    expect(kernelLimits(missingNeeds(kernelNeeds(cfg('vxlan-lwt', 'nftables')), noNft))).toEqual({});
  });

  test('only what a mode may need is probed (asking for ip_gre loads it, with its fallback devices)', () => {
    expect(featuresToProbe(kernelNeeds(cfg('vxlan-lwt')))).toEqual(['vxlan-external', 'nexthop-objects', 'nft-inet', 'xt-hmark', 'vxlan']);
  });

  const m = (re: RegExp) => expect.stringMatching(re) as unknown as string;
  const limitCases: [EncapMode, object][] = [
    // mode -> what a build-B kernel (this host) limits
    ['vxlan-lwt', {}],
    ['gre-lwt', { tunnel: m(/gre-external/), serving: m(/gre-external/), tunnelFamily: { 6: m(/^IPv6 VIPs: .*seg6-lwt.*CONFIG_IPV6_SEG6_LWTUNNEL/) } }],
    ['gre', { tunnel: m(/\[gre\]/), serving: m(/\[gre\]/), tunnelFamily: { 6: m(/seg6-lwt/) } }],
    ['mpls', { tunnel: m(/mpls-iptunnel/), serving: m(/mpls-routing.*modprobe mpls_router/) }],
  ];
  for (const [mode, want] of limitCases) test(`${mode} on a kernel like this one`, () => expect(assessKernel(cfg(mode), BUILD_B).limits).toEqual(want));

  test('a full kernel (build A, the QEMU guest) meets every mode', () => {
    for (const mode of ['vxlan-lwt', 'gre-lwt', 'gre', 'mpls'] as const) expect(assessKernel(cfg(mode), all('present')).missing).toEqual([]);
  });
});

describe('the model with kernel limits', () => {
  const seg6Missing = { tunnelFamily: { 6: 'IPv6 VIPs: encapsulation.mode gre-lwt for IPv6 VIPs needs seg6-lwt' } };
  const build = (mode: EncapMode, kernel: object, nodeName = 'tunnel-1') => {
    const model = new IncrementalModel(settings({ encapsulation: { mode } }), nodeName, { kernel });
    model.replaceAll({
      services: [tunnelService('web', '203.0.113.10,2001:db8:1::10')],
      endpointSlices: [slice('web', [ep('198.51.100.11', 'tunnel-1')]), slice('web', [ep('2001:db8:9::11', 'tunnel-1')])],
      nodes: [node('tunnel-1'), node('worker-1')],
      localPods: [pod('web-1', 'tunnel-1', '198.51.100.11')],
    });
    return model.desiredState();
  };

  test('an IPv6 VIP the kernel cannot carry: not announced, not planned, a Service problem; IPv4 works', () => {
    const d = build('gre-lwt', seg6Missing);
    expect(d.isTunnelNode).toBe(true);
    expect(d.announcements.map((a) => a.vip)).toEqual(['203.0.113.10']);
    const v6 = d.vips.find((v) => v.vip === '2001:db8:1::10')!;
    expect(v6).toMatchObject({ announced: false, kernelMissing: seg6Missing.tunnelFamily[6] });
    expect(d.problems).toContainEqual({ ref: { kind: 'Service', namespace: 'default', name: 'web', uid: 'uid-web' }, reason: 'KernelFeatureMissing', message: expect.stringContaining('2001:db8:1::10 is neither announced nor programmed') as unknown as string });
    const config = testConfig({ mode: 'gre-lwt' });
    const plan = planKernel(d, createDriver('gre-lwt', config.encapsulation, () => Promise.resolve(undefined)), planParams(config));
    expect([...plan.state.routes.keys()]).toEqual(['203.0.113.10']);
    expect(plan.problems).toEqual([]);
  });

  test('a tunnel node in maintenance keeps forwarding, but is not handed the VIP its kernel cannot carry', () => {
    const model = new IncrementalModel(settings({ encapsulation: { mode: 'gre-lwt' } }), 'tunnel-1', { kernel: seg6Missing });
    model.replaceAll({
      services: [tunnelService('web', '2001:db8:1::10')],
      endpointSlices: [slice('web', [ep('2001:db8:9::11', 'worker-1')])],
      nodes: [node('tunnel-1', { taintKeys: ['cmd.nu/tunnel-maintenance'] }), node('worker-1')],
      localPods: [],
    });
    const d = model.desiredState();
    expect(d.maintenance).toMatch(/maintenance taint/);
    expect(d.vips[0]).toMatchObject({ announced: false, kernelMissing: seg6Missing.tunnelFamily[6] });
  });

  test('without limits the same state announces both (the option changes nothing else)', () => {
    expect(build('gre-lwt', {}).announcements.map((a) => a.vip)).toEqual(['203.0.113.10', '2001:db8:1::10']);
  });

  test('a tunnel node that cannot carry tunnel traffic: no tunnel role, nothing announced, a Node problem', () => {
    const d = build('gre-lwt', { tunnel: 'encapsulation.mode gre-lwt needs gre-external' });
    expect(d.isTunnelNode).toBe(false);
    expect(d.announcements).toEqual([]);
    expect(d.vips.every((v) => !v.announced && /kernel cannot carry/.test(v.announceReason))).toBe(true);
    expect(d.problems.filter((p) => p.reason === 'KernelFeatureMissing').map((p) => `${p.ref.kind}/${p.ref.name}`)).toEqual(['Node/tunnel-1']);
  });

  test('a worker is not told about the tunnel role it does not have', () => {
    const d = build('gre-lwt', { tunnel: 'needs gre-external' }, 'worker-1');
    expect(d.problems.filter((p) => p.reason === 'KernelFeatureMissing')).toEqual([]);
  });

  test('pods that cannot be set up: no pod set-ups, one Node problem', () => {
    const d = build('mpls', { serving: 'encapsulation.mode mpls needs mpls-routing' });
    expect(d.podSetups).toEqual([]);
    expect(d.problems.find((p) => p.reason === 'KernelFeatureMissing')?.message).toMatch(/1 pod\(s\) on node tunnel-1 serve VIPs, but no VIP can be made local in them: .*mpls-routing/);
    expect(build('mpls', {}).podSetups).toHaveLength(1);
  });
});

describe('kst validate --node-probe on this machine', () => {
  test('gre-lwt cannot work here (exit 1, what to enable); vxlan-lwt can (exit 0)', async () => {
    const file = join('deploy', 'examples', 'config.yaml');
    expect(await main(['validate', '--config', file, '--set', 'encapsulation.mode=gre-lwt', '--node-probe'])).toBe(1);
    expect(out.join('\n')).toMatch(/node kernel: as a tunnel node: encapsulation.mode gre-lwt needs GRE external .*\[gre-external\]: absent here .*enable CONFIG_NET_IPGRE/);
    expect(out.join('\n')).toMatch(/node kernel: .*problem\(s\): encapsulation.mode gre-lwt cannot fully work here/);
    out.length = 0;
    expect(await main(['validate', '--config', file, '--set', 'encapsulation.mode=vxlan-lwt', '--node-probe'])).toBe(0);
    expect(out.join('\n')).toMatch(/node kernel: ok: encapsulation.mode vxlan-lwt can work here/);
  }, 60_000);
});

// ---------- the must-show: a real agent, in a namespace of this test's own ----------

const SCENARIO = join('dist', 'test', 'agent', 'scenarios', 'kernel-probe-agent.js');
const scenarioMissing = existsSync(SCENARIO) ? undefined : `${SCENARIO} is missing: run \`npm test\` (it compiles first) or \`npx tsc -p tsconfig.json\``;
if (scenarioMissing) console.log(`SKIPPED the agent's kernel report: ${scenarioMissing}`);

interface ScenarioResult {
  readonly report: StatusReport;
  readonly text: string;
  readonly events: ReadonlyArray<{ reason: string; kind: string; message: string }>;
  readonly code: number;
}

(scenarioMissing ? describe.skip : describe)('a real agent started on this kernel', () => {
  const set = new NetnsSet();
  let netns = '';
  beforeAll(async () => {
    netns = await set.create('kkprb');
  });
  afterAll(() => set.destroy());

  const runScenario = async (mode: EncapMode): Promise<ScenarioResult> => {
    const r = await runCommand('ip', ['netns', 'exec', netns, process.execPath, SCENARIO, mode], { allowFailure: true, timeoutMs: 90_000 });
    const line = /^RESULT (.*)$/m.exec(r.stdout);
    if (r.code !== 0 || !line) throw new Error(`scenario exit ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(line[1]!) as ScenarioResult;
  };

  test('gre-lwt on a tunnel node: kst status shows what is missing, the Node gets an Event, nothing retries', async () => {
    const r = await runScenario('gre-lwt');
    expect(r.code).toBe(0);
    expect(r.report.kernel?.missing.map((m) => `${m.role}: ${m.features.join('|')}`)).toEqual(expect.arrayContaining(['tunnel: gre-external', 'serving: gre-external']));
    expect(r.text).toMatch(/kernel: MISSING what the configuration needs \(\d\):\n {2}as a tunnel node: encapsulation.mode gre-lwt needs GRE external/);
    expect(r.report.vips).toEqual([expect.objectContaining({ vip: '203.0.113.40', announced: false, reason: expect.stringContaining('kernel cannot carry') })]);
    const kernelEvents = r.events.filter((e) => e.reason === 'KernelFeatureMissing');
    expect(kernelEvents.map((e) => e.kind)).toEqual(['Node', 'Node']);
    expect(kernelEvents.some((e) => /matches tunnelNodeSelector but cannot carry VIP traffic: .*gre-external/.test(e.message))).toBe(true);
    // A condition, not a retry loop: the data plane was given nothing it cannot do.
    expect(r.report.reconcile.find((x) => x.area === 'dataplane')).toMatchObject({ lastResult: 'ok' });
    expect(r.events.filter((e) => /Dataplane|Programming/.test(e.reason))).toEqual([]);
  }, 120_000);

  test('vxlan-lwt, which this kernel can do: nothing missing, the VIP is served', async () => {
    const r = await runScenario('vxlan-lwt');
    expect(r.report.kernel?.missing).toEqual([]);
    expect(r.text).toContain("kernel: the configuration's needs are met");
    expect(r.report.vips).toEqual([expect.objectContaining({ vip: '203.0.113.40', announced: true })]);
    expect(r.events.filter((e) => e.reason === 'KernelFeatureMissing')).toEqual([]);
    expect(r.report.reconcile.find((x) => x.area === 'dataplane')).toMatchObject({ lastResult: 'ok' });
    // Issue 15: the agent reports where its memory is, the process's RSS and the main heap.
    const memory = r.report.memory;
    expect(memory?.threads.map((t) => t.thread)).toEqual(['main']); // BGP off: no BFD thread
    const main = memory!.threads[0]!;
    expect(main.heapUsedBytes).toBeGreaterThan(2 ** 20);
    expect(main.heapUsedBytes).toBeLessThanOrEqual(main.heapTotalBytes);
    expect(main.externalBytes).toBeGreaterThan(0);
    expect(memory!.rssBytes).toBeGreaterThan(main.heapUsedBytes);
    expect(r.text).toMatch(/^memory: RSS \d+\.\d MB; main heap \d+\.\d MB of \d+\.\d MB, external \d+\.\d MB$/m);
  }, 120_000);
});

describe('metrics', () => {
  test('kst_kernel_feature and kst_kernel_missing_features follow the assessment', async () => {
    registerKernelMetrics(() => assessKernel(cfg('gre-lwt'), BUILD_B));
    const text = await metricsRegistry.metrics();
    expect(text).toContain('kst_kernel_feature{feature="gre-external"} 0');
    expect(text).toContain('kst_kernel_feature{feature="nexthop-objects"} 1');
    expect(text).toContain('kst_kernel_missing_features{feature="gre-external",role="tunnel"} 1');
    expect(text).toContain('kst_kernel_missing_features{feature="gre-external",role="serving"} 1');
    expect(text).toContain('kst_kernel_missing_features{feature="seg6-lwt",role="tunnel"} 1');
    expect(text).not.toMatch(/kst_kernel_missing_features\{feature="nexthop-objects"/);
  });
});
