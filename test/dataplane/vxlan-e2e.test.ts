// vxlan-lwt end to end on this machine's kernel: client -> tunnel node -> pods, with the
// real TunnelDataplane programming the tunnel node's namespace.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { TunnelDataplane } from '../../src/dataplane/index.js';
import { runCommand } from '../../src/system/index.js';
import { desiredState, testConfig, type VipFixture } from './fixtures.js';
import { CLIENT4, CLIENT6, buildFabric, pod4, pod6, setupVxlanPod, type Fabric } from './topology.js';
import { countBy, startEcho, udpFlows, type EchoServer, type FlowResult } from './traffic.js';
import { recordKernelSuite } from '../support/kernel-report.js';

// Host kernel (or the QEMU guest under `npm run test:guest`): a row of the "what ran where" table.
recordKernelSuite({ suite: 'dataplane vxlan-lwt e2e (IPv4, IPv6)', kernel: process.env.KST_IN_GUEST ? 'guest' : 'host' });

const VIP = '203.0.113.10';
const VIP6 = '2001:db8:ff::10';
const VIP_RESTRICTED = '203.0.113.20';
const B = 32;
const FLOWS = 600;
const PORT = 7777;

// Buckets 0-15 -> pod0, 16-23 -> pod1, 24-31 -> pod2: shares 1/2, 1/4, 1/4.
const weighted = [...Array<number>(16).fill(0), ...Array<number>(8).fill(1), ...Array<number>(8).fill(2)];

describe('vxlan-lwt end to end', () => {
  let f: Fabric;
  let dp: TunnelDataplane;
  const servers: EchoServer[] = [];

  const vip4 = (buckets: number[], backends = [pod4(0), pod4(1), pod4(2)]): VipFixture => ({ vip: VIP, backends, buckets });
  const vip6: VipFixture = { vip: VIP6, backends: [pod6(0), pod6(1), pod6(2)] };
  const restricted = (ranges: string[]): VipFixture => ({ vip: VIP_RESTRICTED, backends: [pod4(0), pod4(1)], sourceRanges: ranges });

  beforeAll(async () => {
    f = await buildFabric(3);
    for (const [i, pod] of f.pods.entries()) {
      await setupVxlanPod(pod, [VIP, VIP_RESTRICTED], [VIP6], pod6(i));
      servers.push(await startEcho(pod, `pod${i}`, VIP, PORT));
      servers.push(await startEcho(pod, `pod${i}`, VIP_RESTRICTED, PORT));
      servers.push(await startEcho(pod, `pod${i}`, VIP6, PORT));
    }
    // A table of the test's own on the tunnel node: counts packets towards the client, to
    // show that replies do not come back through the tunnel node.
    await runCommand('nft', ['-f', '-'], {
      netns: f.tunnel,
      input: `table inet kst_test_observer {\n counter to_client { }\n chain pre {\n  type filter hook prerouting priority 0;\n  ip daddr ${CLIENT4} counter name to_client\n }\n}\n`,
    });
    // Single generation: these flows are short and re-sent from the same ports, which the
    // flow-pinning map would (rightly) keep on their pod; pinning has pinning-e2e.test.ts.
    dp = new TunnelDataplane({ config: testConfig({ pin: false }), netns: f.tunnel });
    dp.start();
  }, 120_000);

  afterAll(async () => {
    await dp?.stop();
    for (const s of servers) s.stop();
    await f?.sets.destroy();
  });

  let before: Map<number, FlowResult>;

  test('flows reach the pods with the client address preserved, spread by bucket share, replies direct', async () => {
    const r = await dp.set(desiredState({ bucketCount: B, vips: [vip4(weighted), vip6] }));
    expect(r).toMatchObject({ ok: true, full: true });
    before = await udpFlows(f.client, VIP, PORT, 30000, FLOWS);
    expect(before.size).toBe(FLOWS);
    for (const [sport, res] of before) {
      expect(res.peer).toBe(CLIENT4);
      expect(res.port).toBe(sport);
    }
    const shares = countBy(before.values(), (v) => v.pod);
    // 600 flows at shares 1/2, 1/4, 1/4: expect 300/150/150, 5 standard deviations of slack.
    expect(Math.abs((shares.get('pod0') ?? 0) - 300)).toBeLessThan(62);
    expect(Math.abs((shares.get('pod1') ?? 0) - 150)).toBeLessThan(54);
    expect(Math.abs((shares.get('pod2') ?? 0) - 150)).toBeLessThan(54);
    const observer = await runCommand('nft', ['-j', 'list', 'counter', 'inet', 'kst_test_observer', 'to_client'], { netns: f.tunnel });
    expect(observer.stdout).toContain('"packets": 0');
    const counters = await dp.vipCounters();
    expect(counters.find((c) => c.vip === VIP)?.packets).toBeGreaterThanOrEqual(FLOWS);
  });

  test('IPv6 VIP through VXLAN over IPv6 (no seg6), client address preserved', async () => {
    const rx6 = async (pod: string): Promise<number> => {
      const r = await runCommand('ip', ['-n', pod, '-json', '-s', 'link', 'show', 'kst-vxlan6']);
      return (JSON.parse(r.stdout) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;
    };
    const before6 = await Promise.all(f.pods.map(rx6));
    const flows = await udpFlows(f.client, VIP6, PORT, 31000, 60);
    expect(flows.size).toBe(60);
    for (const res of flows.values()) expect(res.peer).toBe(CLIENT6);
    expect(countBy(flows.values(), (v) => v.pod).size).toBe(3);
    // Every pod decapsulated on its IPv6 VXLAN link: the outer header was IPv6 to the pod's
    // IPv6 address, with a UDP checksum the receiver accepted.
    const after6 = await Promise.all(f.pods.map(rx6));
    for (const [i, n] of after6.entries()) expect(n).toBeGreaterThan(before6[i]!);
    const nexthops = await runCommand('ip', ['-n', f.tunnel, '-6', 'nexthop', 'show']);
    expect(nexthops.stdout).toMatch(/encap ip6 id 4242 src :: dst 2001:db8:f::11 .*csum/);
  });

  test('removing an endpoint moves only its buckets: every other flow stays on its pod', async () => {
    // pod2's buckets 24-31 go to pod0 and pod1 alternately; nothing else moves.
    const moved = weighted.map((b, i) => (b === 2 ? i % 2 : b));
    const opsBefore = dp.operations;
    const tableBase = testConfig().dataplane.tableBase;
    const routesBefore = (await dp.kernel.read(tableBase)).routes.get(VIP)!;
    const r = await dp.set(desiredState({ bucketCount: B, vips: [vip4(moved, [pod4(0), pod4(1)]), vip6] }));
    expect(r).toMatchObject({ ok: true, full: false });
    expect(dp.operations - opsBefore).toBe(8 + 1); // 8 route replacements and pod2's nexthop object deleted, nothing else
    // In the kernel, exactly the bucket tables of pod2 changed.
    const routesAfter = (await dp.kernel.read(tableBase)).routes.get(VIP)!;
    const changed = [...routesAfter.keys()].filter((t) => routesAfter.get(t)!.nexthop !== routesBefore.get(t)?.nexthop).map((t) => t - tableBase);
    expect(changed).toEqual([24, 25, 26, 27, 28, 29, 30, 31]);
    const after = await udpFlows(f.client, VIP, PORT, 30000, FLOWS);
    expect(after.size).toBe(FLOWS);
    let stayed = 0;
    for (const [sport, a] of after) {
      const b = before.get(sport)!;
      if (b.pod === 'pod2') expect(a.pod).not.toBe('pod2');
      else {
        expect(a.pod).toBe(b.pod);
        stayed += 1;
      }
    }
    expect(stayed).toBeGreaterThan(FLOWS / 2);
  });

  test('source ranges: clients outside them are dropped on the tunnel node, inside them pass', async () => {
    const base = [vip4(weighted.map((b, i) => (b === 2 ? i % 2 : b)), [pod4(0), pod4(1)]), vip6];
    expect(await dp.set(desiredState({ bucketCount: B, vips: [...base, restricted(['198.51.100.0/24', '2001:db8::/32'])] }))).toMatchObject({ ok: true });
    expect((await udpFlows(f.client, VIP_RESTRICTED, PORT, 32000, 5)).size).toBe(0);
    expect(await dp.set(desiredState({ bucketCount: B, vips: [...base, restricted(['198.51.100.0/24', `${CLIENT4}/32`])] }))).toMatchObject({ ok: true });
    expect((await udpFlows(f.client, VIP_RESTRICTED, PORT, 32000, 5)).size).toBe(5);
  });

  test('fragmented datagrams: every fragment goes to one pod, with or without conntrack on the tunnel node', async () => {
    // 3000-byte datagrams leave the client as 3 fragments each; any fragment hashed to
    // another pod would lose the datagram. Fragments hash on addresses only, so all go to
    // the one pod the (client, VIP) pair selects.
    const big = await udpFlows(f.client, VIP, PORT, 33000, 30, 3000);
    expect(big.size).toBe(30);
    const pods = new Set([...big.values()].map((v) => v.pod));
    expect(pods.size).toBe(1);
    // Loading conntrack (which defragments at priority -400) must not change the choice:
    // the flow-hash chain runs at -450, before reassembly.
    await runCommand('nft', ['-f', '-'], { netns: f.tunnel, input: 'table inet kst_test_ct {\n chain c {\n  type filter hook prerouting priority 0;\n  ct state new counter\n }\n}\n' });
    const withCt = await udpFlows(f.client, VIP, PORT, 33100, 30, 3000);
    expect(withCt.size).toBe(30);
    expect(new Set([...withCt.values()].map((v) => v.pod))).toEqual(pods);
  });

  test('xtables HMARK backend: the outer VXLAN packets leave the tunnel node without the VIP mark', async () => {
    // A metadata tunnel device routes its outer packet with the packet's mark and may use
    // its cached route only for unmarked packets; KST-POSTROUTING clears our mark once
    // routing has used it. The test's own counters in mangle OUTPUT (which the outer packet
    // passes before POSTROUTING) count outer packets, and those that still carry our mark.
    await dp.cleanup();
    const xt = new TunnelDataplane({ config: testConfig({ pin: false }), netns: f.tunnel, flowHash: 'iptables-legacy' });
    xt.start();
    try {
      expect(await xt.set(desiredState({ bucketCount: B, vips: [vip4(weighted)] }))).toMatchObject({ ok: true });
      const ipt = (...args: string[]) => runCommand('iptables-legacy', ['-t', 'mangle', ...args], { netns: f.tunnel });
      await ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '4789', '-m', 'comment', '--comment', 'kst-test-outer');
      await ipt('-A', 'OUTPUT', '-p', 'udp', '--dport', '4789', '-m', 'mark', '--mark', '0x4b530000/0xffffe000', '-m', 'comment', '--comment', 'kst-test-marked');
      const count = async (): Promise<{ outer: number; marked: number }> => {
        const out = (await ipt('-L', 'OUTPUT', '-v', '-x', '-n')).stdout.split('\n');
        const of = (name: string): number => Number(out.find((l) => l.includes(name))?.trim().split(/\s+/)[0] ?? NaN);
        return { outer: of('kst-test-outer'), marked: of('kst-test-marked') };
      };
      expect((await udpFlows(f.client, VIP, PORT, 34000, 50)).size).toBe(50);
      const cleared = await count();
      expect(cleared.outer).toBeGreaterThanOrEqual(50);
      expect(cleared.marked).toBe(0);
      // Without the chain (as before), the same flows leave marked: the counter can fail.
      await ipt('-D', 'POSTROUTING', '-j', 'KST-POSTROUTING');
      expect((await udpFlows(f.client, VIP, PORT, 34100, 50)).size).toBe(50);
      expect((await count()).marked).toBeGreaterThanOrEqual(50);
    } finally {
      await xt.cleanup();
      await xt.stop();
    }
  });
});
