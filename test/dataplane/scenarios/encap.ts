// Guest-side scenario for the encapsulations this machine's kernel lacks (GRE, MPLS, seg6):
// run inside a full-kernel guest (UML or QEMU) by test/dataplane/full-kernel.test.ts as
//   node dist/test/dataplane/scenarios/encap.js gre gre-lwt mpls gre-ipv6 gre-lwt-ipv6
// For each case it builds namespaces, programs them with the real TunnelDataplane, sends
// UDP flows and prints one line `RESULT <case> <json>`; exits non-zero if any case failed.
// The -ipv6 cases need SRv6 encapsulation in the guest's kernel: they probe for it first
// and, where it is missing (Debian's UML kernel), report `skipped` with the kernel's answer.
import { stat } from 'node:fs/promises';
import { probeKernelFeatures } from '../../../src/agent/kernel-probe.js';
import { TunnelDataplane, type FeatureState } from '../../../src/dataplane/index.js';
import { NetnsSet } from '../../../src/lab/index.js';
import type { EncapMode, IpAddress, PodSetup } from '../../../src/model/types.js';
import { NamespaceFinder, PodNetworks } from '../../../src/podnet/index.js';
import { runCommand } from '../../../src/system/index.js';
import { desiredState, testConfig } from '../fixtures.js';
import { CLIENT4, CLIENT6, buildFabric, pod4, pod6 } from '../topology.js';
import { countBy, startEcho, udpFlows, type EchoServer } from '../traffic.js';

const VIP = '203.0.113.10';
/** In the client's IPv6 route to the tunnel node (topology.ts: 2001:db8:ff::/48). */
const VIP6 = '2001:db8:ff::10';
const PORT = 7777;
const FLOWS = 100;
const B = 16;

interface Outcome {
  ok: boolean;
  answered: number;
  peers: string[];
  pods: Record<string, number>;
  firstOps: number;
  resyncOps: number;
  error?: string;
  /** The case did not run: why (a kernel feature the guest lacks). */
  skipped?: string;
  /** IPv6 cases: SRv6 segments in the tunnel node's routes and nexthops (one per pod). */
  segments?: string[];
  /** IPv6 cases: the pod side (PodNetworks): every pod ready, and a second pass's ops. */
  podsReady?: boolean;
  podResyncOps?: number;
  /** Wall time of the case inside the guest. */
  ms?: number;
}

// Debian's UML kernel has nf_tables without the ip/ip6/inet families (docs/testing.md):
// flow hashing in the guest uses the xtables HMARK backend.
const FLOW_HASH = 'iptables-legacy' as const;

const ip = (netns: string, ...args: string[]) => runCommand('ip', ['-n', netns, ...args]);
const sysctl = (netns: string, kv: string) => runCommand('sysctl', ['-q', '-w', kv], { netns });

/** Programs `desired`, resyncs (must be a no-op), then sends FLOWS flows from `client` to `vip`. */
async function measure(dp: TunnelDataplane, desired: ReturnType<typeof desiredState>, client: string, expectPods: number, vip = VIP, clientIp = CLIENT4): Promise<Outcome> {
  const first = await dp.set(desired);
  if (!first.ok) return { ok: false, answered: 0, peers: [], pods: {}, firstOps: first.operations, resyncOps: -1, error: first.error };
  const resync = await dp.resync();
  const flows = await udpFlows(client, vip, PORT, 30000, FLOWS);
  const pods = Object.fromEntries(countBy(flows.values(), (f) => f.pod));
  const peers = [...new Set([...flows.values()].map((f) => f.peer))];
  const ok = first.ok && resync.ok && resync.operations === 0 && flows.size === FLOWS && peers.length === 1 && peers[0] === clientIp && Object.keys(pods).length === expectPods;
  return { ok, answered: flows.size, peers, pods, firstOps: first.operations, resyncOps: resync.operations };
}

/** gre and gre-lwt: client -> tunnel node -> 2 pods on one fabric, GRE link + VIP in each pod. */
async function greScenario(mode: EncapMode): Promise<Outcome> {
  const f = await buildFabric(2);
  const servers: EchoServer[] = [];
  const dp = new TunnelDataplane({ config: testConfig({ mode }), netns: f.tunnel, flowHash: FLOW_HASH });
  try {
    for (const [i, pod] of f.pods.entries()) {
      // Pod side: a GRE link that accepts GRE addressed to the pod, with the VIP on it.
      await ip(pod, 'link', 'add', 'kst-gre', 'type', 'gre', 'local', pod4(i));
      await ip(pod, 'link', 'set', 'kst-gre', 'up');
      await ip(pod, 'addr', 'add', `${VIP}/32`, 'dev', 'kst-gre');
      await sysctl(pod, 'net.ipv4.conf.kst-gre.rp_filter=0');
      servers.push(await startEcho(pod, `pod${i}`, VIP, PORT));
    }
    dp.start();
    return await measure(dp, desiredState({ mode, bucketCount: B, vips: [{ vip: VIP, backends: [pod4(0), pod4(1)] }] }), f.client, 2);
  } finally {
    await dp.stop();
    for (const s of servers) s.stop();
    await f.sets.destroy();
  }
}

/**
 * mpls: the serving node itself receives the VIP traffic (the router reaches it directly),
 * hashes among its local pods and pushes label 100 over each pod's veth. A third backend
 * on another node must get no flow.
 */
async function mplsScenario(): Promise<Outcome> {
  const sets = new NetnsSet();
  const servers: EchoServer[] = [];
  const node = await sets.create('kun');
  const dp = new TunnelDataplane({ config: testConfig({ mode: 'mpls' }), netns: node, flowHash: FLOW_HASH });
  try {
    const client = await sets.create('kuc');
    await sets.link(client, node, { aAddrs: [`${CLIENT4}/24`], bAddrs: ['192.0.2.1/24'] });
    await ip(client, 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.1');
    const pods: string[] = [];
    for (let i = 0; i < 2; i++) {
      const pod = await sets.create('kup');
      const podIp = `198.51.100.${16 * i + 2}`;
      const { bIf } = await sets.link(node, pod, { aAddrs: [`198.51.100.${16 * i + 1}/28`], bAddrs: [`${podIp}/28`] });
      await ip(pod, 'route', 'add', 'default', 'via', `198.51.100.${16 * i + 1}`);
      // Pod side of mpls: accept labelled packets, pop label 100 to lo, VIP on lo.
      await sysctl(pod, 'net.mpls.platform_labels=1000');
      await sysctl(pod, `net.mpls.conf.${bIf}.input=1`);
      await sysctl(pod, 'net.ipv4.conf.all.rp_filter=0');
      await runCommand('ip', ['-n', pod, '-f', 'mpls', 'route', 'add', '100', 'dev', 'lo']);
      await ip(pod, 'addr', 'add', `${VIP}/32`, 'dev', 'lo');
      servers.push(await startEcho(pod, `pod${i}`, VIP, PORT));
      pods.push(podIp);
    }
    dp.start();
    const desired = desiredState({
      mode: 'mpls',
      node: 'node-a',
      bucketCount: B,
      vips: [{ vip: VIP, backends: [pods[0]!, pods[1]!, '192.0.2.250'], nodes: ['node-a', 'node-a', 'node-b'] }],
    });
    return await measure(dp, desired, client, 2);
  } finally {
    await dp.stop();
    for (const s of servers) s.stop();
    await sets.destroy();
  }
}

/**
 * The SRv6 segments the tunnel node's kernel holds, from `ip -6 route` (all tables) and
 * `ip -6 nexthop`: iproute2 prints each as `encap seg6 mode encap segs 1 [ ADDR ]`.
 */
async function seg6Segments(netns: string): Promise<string[]> {
  const routes = await ip(netns, '-6', 'route', 'show', 'table', 'all');
  const nexthops = await ip(netns, '-6', 'nexthop', 'show');
  const found = [...`${routes.stdout}\n${nexthops.stdout}`.matchAll(/encap seg6 mode encap segs \d+ \[ ([^\]]+?) \]/g)].map((m) => m[1]!);
  return [...new Set(found)].sort();
}

/**
 * IPv6 VIP in gre / gre-lwt: the tunnel node encapsulates in SRv6 with the pod as the only
 * segment (drivers/seg6.ts); the pod side is the product's own (PodNetworks with the mode's
 * objects: the VIP on kst-gre and seg6_enabled on the pod's interface and `all`), not set up
 * by hand: the pod side must make them.
 * gre-lwt pods are dual-stack (found by their IPv4 address, reached at their IPv6 one); gre
 * pods are IPv6-only, so their kst-gre is an ip6gre link.
 */
async function seg6Scenario(mode: 'gre' | 'gre-lwt'): Promise<Outcome> {
  const f = await buildFabric(2);
  const servers: EchoServer[] = [];
  const config = testConfig({ mode });
  const dp = new TunnelDataplane({ config, netns: f.tunnel, flowHash: FLOW_HASH });
  // The finder only ever sees this case's pod namespaces.
  const mine = new Set<number>();
  const nets = new PodNetworks({ encap: config.encapsulation, finder: new NamespaceFinder({ accept: (c) => mine.has(c.inode) }) });
  nets.start();
  try {
    for (const pod of f.pods) mine.add((await stat(`/run/netns/${pod}`)).ino);
    const setups: PodSetup[] = f.pods.map((_, i) => ({
      pod: { namespace: 'shop', name: `web${i}`, uid: `uid-web${i}` },
      podIp: (mode === 'gre-lwt' ? pod4(i) : pod6(i)) as IpAddress,
      ...(mode === 'gre-lwt' ? { podIps: [pod4(i), pod6(i)] as IpAddress[] } : {}),
      containerIds: [`c${i}`],
      vips: [VIP6 as IpAddress],
      mode,
    }));
    const podPass = await nets.set(setups);
    const podsReady = podPass.pods.length === 2 && podPass.pods.every((p) => p.state === 'ready');
    if (!podsReady) return { ok: false, answered: 0, peers: [], pods: {}, firstOps: 0, resyncOps: -1, podsReady, error: `pod side: ${JSON.stringify(podPass.pods)}` };
    const podResyncOps = (await nets.set(setups)).ops;
    for (const [i, pod] of f.pods.entries()) servers.push(await startEcho(pod, `pod${i}`, VIP6, PORT));
    dp.start();
    const desired = desiredState({ mode, bucketCount: B, vips: [{ vip: VIP6, backends: [pod6(0), pod6(1)] }] });
    const out = await measure(dp, desired, f.client, 2, VIP6, CLIENT6);
    const segments = await seg6Segments(f.tunnel);
    const wanted = [pod6(0), pod6(1)].sort();
    const ok = out.ok && podResyncOps === 0 && JSON.stringify(segments) === JSON.stringify(wanted);
    return { ...out, ok, segments, podsReady, podResyncOps };
  } finally {
    await nets.stop();
    await dp.stop();
    for (const s of servers) s.stop();
    await f.sets.destroy();
  }
}

/**
 * Asks the guest's kernel for SRv6 encapsulation once, with the agent's own probe (an
 * `encap seg6` route in a throwaway namespace). Absent: why, and the -ipv6 cases skip.
 * A probe that could not run at all says nothing about the kernel: that is a failure.
 */
let seg6Probe: Promise<FeatureState> | undefined;
async function seg6Missing(): Promise<string | undefined> {
  seg6Probe ??= probeKernelFeatures(['seg6-lwt']).then((f) => f['seg6-lwt'] ?? { state: 'unknown', why: 'not probed' });
  const s = await seg6Probe;
  if (s.state === 'present') return undefined;
  const what = `the ${process.env.KST_GUEST ?? 'full-kernel'} guest's kernel cannot add an \`encap seg6\` route (seg6-lwt ${s.state}: ${s.why})`;
  if (s.state === 'unknown') throw new Error(what);
  return what;
}

const CASES: Readonly<Record<string, () => Promise<Outcome>>> = {
  gre: () => greScenario('gre'),
  'gre-lwt': () => greScenario('gre-lwt'),
  mpls: mplsScenario,
  'gre-ipv6': () => seg6Case('gre'),
  'gre-lwt-ipv6': () => seg6Case('gre-lwt'),
};

async function seg6Case(mode: 'gre' | 'gre-lwt'): Promise<Outcome> {
  const missing = await seg6Missing();
  if (missing) return { ok: true, skipped: missing, answered: 0, peers: [], pods: {}, firstOps: 0, resyncOps: -1 };
  return seg6Scenario(mode);
}

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  let failed = false;
  for (const name of names) {
    let outcome: Outcome;
    const started = Date.now();
    try {
      const run = CASES[name];
      if (!run) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
      outcome = await run();
    } catch (err) {
      outcome = { ok: false, answered: 0, peers: [], pods: {}, firstOps: 0, resyncOps: -1, error: err instanceof Error ? err.message : String(err) };
    }
    if (!outcome.ok) failed = true;
    console.log(`RESULT ${name} ${JSON.stringify({ ...outcome, ms: Date.now() - started })}`);
  }
  process.exitCode = failed ? 1 : 0;
}

void main();
