// vxlan-lwt on this kernel, end to end: a client's packets, encapsulated by a tunnel
// namespace exactly as the data plane does it, reach sockets bound to 0.0.0.0 / :: inside a
// pod namespace with the client's own source address, and the replies come back from the
// VIP. Reconcile is idempotent, leaves everything else in the pod alone, and takes all of
// its own objects out again.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MemoryEventSink } from '../../src/observe/index.js';
import { NamespaceFinder, PodNetworks } from '../../src/podnet/index.js';
import { runCommand } from '../../src/system/index.js';
import type { IpAddress, PodSetup } from '../../src/model/types.js';
import { CLIENT_IP, CLIENT_IP6, PodLab, type LabPod } from './lab.js';
import { ownedState, unrelatedState } from './inspect.js';
import { recordKernelSuite } from '../support/kernel-report.js';

// Host kernel (or the QEMU guest under `npm run test:guest`): a row of the "what ran where" table.
recordKernelSuite({ suite: 'podnet vxlan-lwt (IPv4, IPv6)', kernel: process.env.KST_IN_GUEST ? 'guest' : 'host' });

const encap = { mode: 'vxlan-lwt' as const, vni: 4242, vxlanPort: 4789, mplsLabel: 100 };
const VIP = '203.0.113.250' as IpAddress;
const VIP2 = '203.0.113.251' as IpAddress;
const VIP6 = '2001:db8:4b53:5::250' as IpAddress;
const PORT = 8080;

describe('podnet vxlan-lwt (host kernel)', () => {
  const lab = new PodLab();
  const events = new MemoryEventSink();
  let pod: LabPod;
  let nets: PodNetworks;
  let setup: PodSetup;

  beforeAll(async () => {
    await lab.build();
    pod = await lab.addPod('203.0.113.10', { ip6: '2001:db8:4b53:e::10' });
    // Things in the pod that are not the project's and must survive every change.
    await lab.ip(pod.netns, 'addr add 192.0.2.77/32 dev lo');
    await lab.ip(pod.netns, 'link add app0 type bridge');
    await lab.tunnelVxlan(encap.vni, encap.vxlanPort, [{ vip: VIP, pod: pod.ip }, { vip: VIP2, pod: pod.ip }, { vip: VIP6, pod: pod.ip6! }]);
    await lab.startEchoServer(pod.netns, PORT);
    const mine = await lab.inodes();
    nets = new PodNetworks({ encap, events, finder: new NamespaceFinder({ accept: (c) => mine.has(c.inode) }), retry: { initialMs: 50, maxMs: 200 } });
    nets.start();
    setup = { pod: { namespace: 'shop', name: 'web-0', uid: 'uid-web-0' }, podIp: pod.ip as IpAddress, podIps: [pod.ip, pod.ip6!] as IpAddress[], containerIds: ['c1'], vips: [VIP, VIP6], mode: 'vxlan-lwt' };
  });
  afterAll(async () => {
    await nets?.stop();
    await lab.destroy();
  });

  it('before set-up the VIP does not answer', async () => {
    const r = await lab.probe(VIP, PORT, 1500);
    expect(r.udp).toBeUndefined();
  });

  it('makes the VIPs local: client source preserved, replies from the VIP (VXLAN over IPv4 and over IPv6)', async () => {
    const report = await nets.set([setup]);
    expect(report.pods).toEqual([expect.objectContaining({ state: 'ready' })]);
    expect(report.ops).toBeGreaterThan(0);
    const owned = await ownedState(runCommand, pod.netns);
    // One decap link per family: a VXLAN device has one address family.
    expect(owned.links.sort()).toEqual(['kst-vxlan', 'kst-vxlan6']);
    expect(owned.addresses.sort()).toEqual([`kst-vxlan ${VIP}/32`, `kst-vxlan6 ${VIP6}/128`].sort());

    // TCP: the accepted socket's local address is the VIP, so replies leave from it; the
    // client's connection (to the VIP) completing proves the reply source. UDP: the
    // datagram reaches the 0.0.0.0 socket with the client's source; an unconnected
    // sendto() answer takes its source from the route (the pod IP), as in any DSR set-up
    // (docs/podnet.md). ICMP echo replies come from the VIP.
    const r = await lab.probe(VIP, PORT);
    expect(r).toEqual({ udp: { replyFrom: pod.ip, serverSaw: CLIENT_IP }, tcp: { serverSaw: CLIENT_IP, serverLocal: VIP } });
    expect(await lab.ping(VIP)).toBe(VIP);
    const r6 = await lab.probe(VIP6, PORT);
    expect(r6).toEqual({ udp: { replyFrom: pod.ip6, serverSaw: CLIENT_IP6 }, tcp: { serverSaw: CLIENT_IP6, serverLocal: VIP6 } });
    expect(await lab.ping(VIP6)).toBe(VIP6);
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Normal', reason: 'TunnelVipsConfigured', ref: expect.objectContaining({ kind: 'Pod', name: 'web-0' }) }));
  });

  it('is idempotent: a second set and a resync apply nothing', async () => {
    expect((await nets.set([setup])).ops).toBe(0);
    expect((await nets.resync()).ops).toBe(0);
  });

  it('never answers ARP for a VIP on the pod interface; reverse-path filter loose on the decap link; no seg6', async () => {
    const read = (k: string) => runCommand('sysctl', ['-n', k], { netns: pod.netns }).then((r) => r.stdout.trim());
    expect(await read('net.ipv4.conf.eth0.arp_ignore')).toBe('1');
    expect(await read('net.ipv4.conf.eth0.arp_announce')).toBe('2');
    expect(await read('net.ipv4.conf.kst-vxlan.rp_filter')).toBe('2');
    // IPv6 arrives by VXLAN: nothing in the pod depends on (or switches on) SRv6.
    expect(await read('net.ipv6.conf.all.seg6_enabled')).toBe('0');
    expect(await read('net.ipv6.conf.eth0.seg6_enabled')).toBe('0');
  });

  it('adds and removes a VIP by diff, repairs drift', async () => {
    const more = { ...setup, vips: [VIP, VIP2] };
    const r = await nets.set([more]);
    // VIP2 added, VIP6 removed with its link kst-vxlan6: nothing else.
    expect(r.ops).toBe(2);
    expect((await ownedState(runCommand, pod.netns)).links).toEqual(['kst-vxlan']);
    expect((await lab.probe(VIP2, PORT)).tcp).toEqual({ serverSaw: CLIENT_IP, serverLocal: VIP2 });
    expect((await ownedState(runCommand, pod.netns)).addresses.sort()).toEqual([`kst-vxlan ${VIP}/32`, `kst-vxlan ${VIP2}/32`]);

    // Someone deletes our VIP: the next resync puts it back, with one operation.
    await lab.ip(pod.netns, `addr del ${VIP2}/32 dev kst-vxlan`);
    expect((await nets.resync()).ops).toBe(1);
    expect((await lab.probe(VIP2, PORT)).tcp?.serverLocal).toBe(VIP2);
    setup = more;
  });

  it('a kernel refusal (mode this kernel cannot do) is an Event and a retry, not a crash; it recovers', async () => {
    const r = await nets.set([{ ...setup, mode: 'gre-lwt' }]);
    expect(r.pods).toEqual([expect.objectContaining({ state: 'pending', reason: 'KernelRefused' })]);
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'KernelRefused', message: expect.stringContaining('kst-gre') }));
    expect((await nets.set([setup])).pods).toEqual([expect.objectContaining({ state: 'ready' })]);
    expect((await lab.probe(VIP, PORT)).tcp?.serverLocal).toBe(VIP);
  });

  it('removal leaves nothing of the project and everything else in the pod', async () => {
    const before = await unrelatedState(runCommand, pod.netns);
    const r = await nets.set([]);
    expect(r.ops).toBeGreaterThan(0);
    const owned = await ownedState(runCommand, pod.netns);
    expect(owned).toEqual({ links: [], addresses: [], mplsRoutes: [] });
    expect(await unrelatedState(runCommand, pod.netns)).toEqual(before);
    const read = (k: string) => runCommand('sysctl', ['-n', k], { netns: pod.netns }).then((x) => x.stdout.trim());
    expect(await read('net.ipv4.conf.eth0.arp_ignore')).toBe('0');
    expect(await read('net.ipv4.conf.eth0.arp_announce')).toBe('0');
    expect((await lab.probe(VIP, PORT, 1500)).udp).toBeUndefined();
    expect((await nets.set([])).ops).toBe(0);
  });
});
