// PodNetworks' life cycle against real namespaces: a pod whose namespace does not exist yet
// is retried with backoff until it appears; a restarted pod (new namespace, same IP) is set
// up again in the new one; a pod that goes away is forgotten; a hostNetwork pod is refused
// without touching the host; failures are Events and metrics, never exceptions.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { stat } from 'node:fs/promises';
import type { IpAddress, PodSetup } from '../../src/model/types.js';
import { MemoryEventSink, metricsRegistry } from '../../src/observe/index.js';
import { NamespaceFinder, PodNetworks } from '../../src/podnet/index.js';
import { runCommand } from '../../src/system/index.js';
import { ownedState } from './inspect.js';
import { PodLab } from './lab.js';

const encap = { mode: 'vxlan-lwt' as const, vni: 4242, vxlanPort: 4789, mplsLabel: 100 };
const VIP = '203.0.113.240' as IpAddress;

function setup(name: string, podIp: string, containerIds: string[] = ['c1'], vips: IpAddress[] = [VIP]): PodSetup {
  return { pod: { namespace: 'shop', name, uid: `uid-${name}` }, podIp: podIp as IpAddress, containerIds, vips, mode: 'vxlan-lwt' };
}

async function until<T>(what: string, f: () => T | undefined, ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await metricsRegistry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as Array<{ labels: Record<string, string>; value: number }> | undefined)?.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

describe('PodNetworks life cycle (real namespaces)', () => {
  const lab = new PodLab();
  const mine = new Set<number>();
  const events = new MemoryEventSink();
  let nets: PodNetworks;

  beforeAll(async () => {
    await lab.build();
    const finder = new NamespaceFinder({ accept: (c) => mine.has(c.inode) });
    nets = new PodNetworks({ encap, events, finder, retry: { initialMs: 100, maxMs: 400 } });
    nets.start();
  });
  afterAll(async () => {
    await nets?.stop();
    await lab.destroy();
  });
  const track = async (netns: string) => mine.add((await stat(`/run/netns/${netns}`)).ino);

  it('retries a pod whose namespace is not there yet, with an Event and a metric, until it appears', async () => {
    const before = await metric('kst_podnet_errors_total', { reason: 'PodNetnsNotFound' });
    const r = await nets.set([setup('late', '203.0.113.20')]);
    expect(r.pods).toEqual([expect.objectContaining({ state: 'pending', reason: 'PodNetnsNotFound', attempts: 1 })]);
    // The adapter contract: a pod that is not done makes set() not ok, naming the pod.
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^1 pod not done: shop\/late pending \(PodNetnsNotFound: no network namespace/);
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'PodNetnsNotFound', ref: { kind: 'Pod', namespace: 'shop', name: 'late', uid: 'uid-late' } }));
    expect(await metric('kst_podnet_errors_total', { reason: 'PodNetnsNotFound' })).toBeGreaterThan(before);
    expect(await metric('kst_podnet_setups', { state: 'pending' })).toBe(1);

    // Backoff: retried on its own; attempts grow while the namespace is missing.
    await until('a second attempt', () => (nets.status()[0]!.attempts >= 2 ? true : undefined));
    const warnings = events.events.filter((e) => e.reason === 'PodNetnsNotFound').length;
    expect(warnings).toBe(1); // one Event per change, not per retry

    const pod = await lab.addPod('203.0.113.20');
    await track(pod.netns);
    await until('the pod to become ready', () => (nets.status()[0]!.state === 'ready' ? true : undefined));
    expect((await ownedState(runCommand, pod.netns)).addresses).toEqual([`kst-vxlan ${VIP}/32`]);
    expect(await metric('kst_podnet_setups', { state: 'ready' })).toBe(1);
    // The retry that made it ready is the loop's: its last result is a success now.
    expect(nets.reconcileLoop.lastResult).toMatchObject({ ok: true });
    expect(nets.reconcileLoop.health().failures).toBe(0);
  });

  it('follows a restarted pod into its new namespace (same IP, new containers)', async () => {
    const old = nets.status()[0]!.netns!;
    await runCommand('ip', ['netns', 'del', old.replace('/run/netns/', '')]);
    const reborn = await lab.addPod('203.0.113.20', { nodeRoute: false });
    await track(reborn.netns);
    const r = await nets.set([setup('late', '203.0.113.20', ['c2'])]);
    expect(r.pods).toEqual([expect.objectContaining({ state: 'ready', netns: `/run/netns/${reborn.netns}` })]);
    expect((await ownedState(runCommand, reborn.netns)).addresses).toEqual([`kst-vxlan ${VIP}/32`]);
  });

  it('a pod whose namespace vanished is forgotten when it leaves the set', async () => {
    const where = nets.status()[0]!.netns!;
    await runCommand('ip', ['netns', 'del', where.replace('/run/netns/', '')]);
    const r = await nets.set([]);
    expect(r).toEqual({ ok: true, ops: 0, pods: [] });
    expect(await metric('kst_podnet_setups', { state: 'ready' })).toBe(0);
  });

  it('refuses a hostNetwork pod (its IP is the node\'s) and never touches the host namespace', async () => {
    const host = JSON.parse((await runCommand('ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'])).stdout) as Array<{ addr_info: Array<{ local: string }> }>;
    const hostIp = host.flatMap((l) => l.addr_info.map((a) => a.local))[0];
    if (!hostIp) {
      console.warn('skipping hostNetwork refusal: the host has no global IPv4 address');
      return;
    }
    const hostLinks = (await runCommand('ip', ['-j', 'link', 'show'])).stdout;
    const r = await nets.set([setup('hostnet', hostIp)]);
    expect(r.pods).toEqual([expect.objectContaining({ state: 'refused', reason: 'HostNetworkPod' })]);
    expect(r).toMatchObject({ ok: false, error: expect.stringContaining('shop/hostnet refused (HostNetworkPod') });
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'HostNetworkPod', ref: expect.objectContaining({ name: 'hostnet' }) }));
    // Refused pods are not retried until their setup changes.
    expect((await nets.resync()).pods[0]!.attempts).toBe(1);
    expect(JSON.parse((await runCommand('ip', ['-j', 'link', 'show'])).stdout).map((l: { ifname: string }) => l.ifname))
      .toEqual(JSON.parse(hostLinks).map((l: { ifname: string }) => l.ifname));
    await nets.set([]);
  });

  it('reports an IPv6 VIP that mpls mode cannot make local, and serves the rest', async () => {
    const pod = await lab.addPod('203.0.113.21');
    await track(pod.netns);
    const s: PodSetup = { ...setup('v6', '203.0.113.21', ['c'], [VIP, '2001:db8:4b53:5::1' as IpAddress]), mode: 'mpls' };
    await nets.set([s]); // fails here anyway: this kernel has no MPLS
    expect(events.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'UnsupportedVip', message: expect.stringContaining('2001:db8:4b53:5::1') }));
    const st = nets.status()[0]!;
    expect(st).toEqual(expect.objectContaining({ state: 'pending', reason: 'KernelRefused' }));
    expect(st.message).toMatch(/mpls/);
    await nets.set([]);
    expect(await ownedState(runCommand, pod.netns)).toEqual({ links: [], addresses: [], mplsRoutes: [] });
  });
});
