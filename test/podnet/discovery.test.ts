// Runtime-independent discovery: twenty pod namespaces, each found by its IP, including
// one known only as /proc/PID/ns/net (its name removed, a process keeping it alive); a
// restarted pod (new namespace, same IP) is found again; the host's namespace is refused.
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { NamespaceFinder } from '../../src/podnet/index.js';
import { runCommand } from '../../src/system/index.js';
import { PodLab, type LabPod } from './lab.js';

const POD_COUNT = 20;
const podIp = (i: number) => `203.0.113.${100 + i}`;

describe('NamespaceFinder (real namespaces)', () => {
  const lab = new PodLab();
  const pods: LabPod[] = [];
  let sleeper: ChildProcess | undefined;
  let hidden: { ip: string; path: string; inode: number };
  const mine = new Set<number>();
  const accept = (c: { inode: number }) => mine.has(c.inode);

  beforeAll(async () => {
    await lab.build();
    pods.push(...(await Promise.all(Array.from({ length: POD_COUNT - 1 }, (_, i) => lab.addPod(podIp(i))))));
    // The twentieth pod has no name: a process sleeps in it and the name is deleted, the
    // way a container runtime that never names namespaces leaves them.
    const temp = await lab.set.create('kstpx');
    await lab.wirePod(temp, podIp(POD_COUNT - 1));
    sleeper = spawn('ip', ['netns', 'exec', temp, 'sleep', '300'], { stdio: 'ignore' });
    await waitFor(async () => (await stat(`/proc/${sleeper!.pid}/ns/net`)).ino === (await stat(`/run/netns/${temp}`)).ino);
    const path = `/proc/${sleeper.pid}/ns/net`;
    hidden = { ip: podIp(POD_COUNT - 1), path, inode: (await stat(path)).ino };
    await runCommand('ip', ['netns', 'del', temp]);
    for (const n of await lab.inodes()) mine.add(n);
    mine.add(hidden.inode);
  });
  afterAll(async () => {
    if (sleeper && sleeper.exitCode === null) {
      const exited = new Promise((r) => sleeper!.once('exit', r));
      sleeper.kill('SIGKILL');
      await exited;
    }
    await lab.destroy();
  });

  it('lists named and unnamed candidates once each, never the host namespace', async () => {
    const finder = new NamespaceFinder();
    const { candidates, hostInode } = await finder.candidates();
    const inodes = candidates.map((c) => c.inode);
    expect(new Set(inodes).size).toBe(inodes.length);
    expect(inodes).not.toContain(hostInode);
    for (const n of mine) expect(inodes).toContain(n);
    expect(candidates.find((c) => c.inode === hidden.inode)?.path).toMatch(/^\/proc\/\d+\/ns\/net$/);
  });

  it('finds each of twenty pods by IP with one scan, then from the cache', async () => {
    const finder = new NamespaceFinder({ accept });
    const all = [...pods.map((p, i) => ({ uid: `u${i}`, podIp: p.ip, containerIds: [`c${i}`] })), { uid: 'u-hidden', podIp: hidden.ip, containerIds: ['ch'] }];
    const found = await finder.locate(all);
    expect(finder.scans).toBe(1);
    for (const [i, p] of pods.entries()) {
      const r = found.get(`u${i}`);
      expect(r).toEqual({ kind: 'found', cached: false, ns: { path: `/run/netns/${p.netns}`, inode: (await stat(`/run/netns/${p.netns}`)).ino, podIf: 'eth0' } });
    }
    expect(found.get('u-hidden')).toEqual({ kind: 'found', cached: false, ns: { path: hidden.path, inode: hidden.inode, podIf: 'eth0' } });

    const again = await finder.locate(all);
    expect(finder.scans).toBe(1);
    expect([...again.values()].every((r) => r.kind === 'found' && r.cached)).toBe(true);
  });

  it('re-detects a restarted pod: new namespace with the same IP, same or new container ids', async () => {
    const finder = new NamespaceFinder({ accept });
    const victim = pods[3]!;
    const first = await finder.locate([{ uid: 'r', podIp: victim.ip, containerIds: ['old'] }]);
    expect(first.get('r')).toEqual(expect.objectContaining({ kind: 'found', cached: false }));

    // The sandbox is recreated: old namespace gone, a new one with the same IP.
    await runCommand('ip', ['netns', 'del', victim.netns]);
    const reborn = await lab.addPod(victim.ip);
    mine.add((await stat(`/run/netns/${reborn.netns}`)).ino);
    pods[3] = reborn;

    // Same container ids (the model has not seen the restart yet): the cached inode is gone.
    const r1 = await finder.locate([{ uid: 'r', podIp: victim.ip, containerIds: ['old'] }]);
    expect(r1.get('r')).toEqual(expect.objectContaining({ kind: 'found', cached: false, ns: expect.objectContaining({ path: `/run/netns/${reborn.netns}` }) }));
    // The reborn namespace's own inode (the kernel may hand the old number out again: nsfs
    // inode numbers are reused once freed, so "different from before" cannot be asserted).
    expect((r1.get('r') as { ns: { inode: number } }).ns.inode).toBe((await stat(`/run/netns/${reborn.netns}`)).ino);

    // New container ids: looked up again even though the cached namespace is still valid.
    const scans = finder.scans;
    const r2 = await finder.locate([{ uid: 'r', podIp: victim.ip, containerIds: ['new'] }]);
    expect(finder.scans).toBe(scans + 1);
    expect(r2.get('r')).toEqual(expect.objectContaining({ kind: 'found', cached: false }));
  });

  it('reports unknown, ambiguous and host-network IPs', async () => {
    const twin = await lab.addPod('203.0.113.199');
    const twin2 = await lab.addPod('203.0.113.199', { nodeRoute: false });
    for (const p of [twin, twin2]) mine.add((await stat(`/run/netns/${p.netns}`)).ino);
    const host = JSON.parse((await runCommand('ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'])).stdout) as Array<{ addr_info: Array<{ local: string }> }>;
    const hostIp = host.flatMap((l) => l.addr_info.map((a) => a.local))[0];

    const finder = new NamespaceFinder({ accept });
    const res = await finder.locate([
      { uid: 'none', podIp: '203.0.113.198', containerIds: [] },
      { uid: 'twin', podIp: '203.0.113.199', containerIds: [] },
      ...(hostIp ? [{ uid: 'host', podIp: hostIp, containerIds: [] }] : []),
    ]);
    expect(res.get('none')).toEqual({ kind: 'not-found' });
    expect(res.get('twin')).toEqual({ kind: 'ambiguous', paths: [`/run/netns/${twin.netns}`, `/run/netns/${twin2.netns}`].sort() });
    if (hostIp) expect(res.get('host')).toEqual({ kind: 'host-network' });
    else console.warn('no global IPv4 address on the host: host-network refusal not checked');
  });
});

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
}
