// Guest-side scenario for the encapsulations this machine's kernel lacks (GRE, MPLS): run
// inside a full-kernel guest (UML or QEMU) by test/dataplane/full-kernel.test.ts as
//   node dist/test/dataplane/scenarios/encap.js gre gre-lwt mpls
// For each mode it builds namespaces, programs them with the real TunnelDataplane, sends
// UDP flows and prints one line `RESULT <mode> <json>`; exits non-zero if any mode failed.
import { TunnelDataplane } from '../../../src/dataplane/index.js';
import { NetnsSet } from '../../../src/lab/index.js';
import type { EncapMode } from '../../../src/model/types.js';
import { runCommand } from '../../../src/system/index.js';
import { desiredState, testConfig } from '../fixtures.js';
import { CLIENT4, buildFabric, pod4 } from '../topology.js';
import { countBy, startEcho, udpFlows, type EchoServer } from '../traffic.js';

const VIP = '203.0.113.10';
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
}

// Debian's UML kernel has nf_tables without the ip/ip6/inet families (docs/testing.md):
// flow hashing in the guest uses the xtables HMARK backend.
const FLOW_HASH = 'iptables-legacy' as const;

const ip = (netns: string, ...args: string[]) => runCommand('ip', ['-n', netns, ...args]);
const sysctl = (netns: string, kv: string) => runCommand('sysctl', ['-q', '-w', kv], { netns });

async function measure(dp: TunnelDataplane, desired: ReturnType<typeof desiredState>, client: string, expectPods: number): Promise<Outcome> {
  const first = await dp.set(desired);
  if (!first.ok) return { ok: false, answered: 0, peers: [], pods: {}, firstOps: first.operations, resyncOps: -1, error: first.error };
  const resync = await dp.resync();
  const flows = await udpFlows(client, VIP, PORT, 30000, FLOWS);
  const pods = Object.fromEntries(countBy(flows.values(), (f) => f.pod));
  const peers = [...new Set([...flows.values()].map((f) => f.peer))];
  const ok = first.ok && resync.ok && resync.operations === 0 && flows.size === FLOWS && peers.length === 1 && peers[0] === CLIENT4 && Object.keys(pods).length === expectPods;
  return { ok, answered: flows.size, peers, pods, firstOps: first.operations, resyncOps: resync.operations };
}

/** gre and gre-lwt: client -> tunnel node -> 2 pods on one fabric, GRE link + VIP in each pod. */
async function greScenario(mode: EncapMode): Promise<Outcome> {
  const f = await buildFabric(2, { seg6: false });
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

async function main(): Promise<void> {
  const modes = process.argv.slice(2) as EncapMode[];
  let failed = false;
  for (const mode of modes) {
    let outcome: Outcome;
    try {
      outcome = mode === 'mpls' ? await mplsScenario() : await greScenario(mode);
    } catch (err) {
      outcome = { ok: false, answered: 0, peers: [], pods: {}, firstOps: 0, resyncOps: -1, error: err instanceof Error ? err.message : String(err) };
    }
    if (!outcome.ok) failed = true;
    console.log(`RESULT ${mode} ${JSON.stringify(outcome)}`);
  }
  process.exitCode = failed ? 1 : 0;
}

void main();
