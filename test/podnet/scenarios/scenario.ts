// Shared body of the full-kernel scenarios: one pod per mode behind a hand-built tunnel
// side, all reconciled by one real PodNetworks (one set, as the agent does it); traffic
// from the client proves each VIP is local (client source kept, TCP answered from the
// VIP, ICMP echo answered by the VIP); a second set applies nothing; removal leaves
// nothing of the project's in any pod. Everything is done once for all modes: inside a
// full-kernel guest every program start costs a lot. (Unreachability before set-up and
// after removal is checked on the host kernel, test/podnet/vxlan-lwt.test.ts.)
import type { EncapMode, IpAddress, PodSetup } from '../../../src/model/types.js';
import { MemoryEventSink } from '../../../src/observe/index.js';
import { NamespaceFinder, PodNetworks } from '../../../src/podnet/index.js';
import { runCommand } from '../../../src/system/index.js';
import { ownedState } from '../inspect.js';
import { CLIENT_IP, PodLab, type LabPod } from '../lab.js';

export const ENCAP = { vni: 4242, vxlanPort: 4789, mplsLabel: 100 };
const PORT = 8080;

export interface ScenarioResult {
  ok: boolean;
  checks: Record<string, boolean>;
  details: Record<string, unknown>;
}

export interface ModeScenario {
  readonly mode: EncapMode;
  readonly podIp: string;
  readonly vip: IpAddress;
  /** Builds the tunnel (or serving node, for mpls) side of the encapsulation. */
  tunnelSide(lab: PodLab, pod: LabPod): Promise<void>;
  /** Optional: something in the pod the mode must cope with (e.g. strict rp_filter). */
  prepare?(lab: PodLab, pod: LabPod): Promise<void>;
  /** Kernel settings (/proc/sys paths below /proc/sys) the pod must have after set-up. */
  readonly settings?: Readonly<Record<string, (value: string) => boolean>>;
}

export const setupFor = (s: Pick<ModeScenario, 'mode' | 'vip'>, pod: LabPod, name = `web-${s.mode}`): PodSetup => ({
  pod: { namespace: 'shop', name, uid: `uid-${name}` },
  podIp: pod.ip as IpAddress,
  containerIds: ['c'],
  vips: [s.vip],
  mode: s.mode,
});

/** Reads settings in a pod with one program: `grep -H . /proc/sys/...`. */
export async function settingsIn(netns: string, paths: readonly string[]): Promise<Record<string, string>> {
  const res = await runCommand('grep', ['-H', '.', ...paths.map((p) => `/proc/sys/${p}`)], { netnsPath: `/run/netns/${netns}`, allowFailure: true });
  return Object.fromEntries(res.stdout.split('\n').filter(Boolean).map((l) => {
    const i = l.lastIndexOf(':');
    return [l.slice('/proc/sys/'.length, i), l.slice(i + 1)];
  }));
}

export async function runScenarios(lab: PodLab, scenarios: readonly ModeScenario[]): Promise<Record<string, ScenarioResult>> {
  const out: Record<string, ScenarioResult> = {};
  const pods = new Map<EncapMode, LabPod>();
  const t0 = Date.now();
  const ms: Record<string, number> = {};
  const mark = (what: string) => (ms[what] = Date.now() - t0);
  for (const s of scenarios) {
    const pod = await lab.addPod(s.podIp);
    await s.prepare?.(lab, pod);
    await s.tunnelSide(lab, pod);
    await lab.startEchoServer(pod.netns, PORT);
    pods.set(s.mode, pod);
    out[s.mode] = { ok: true, checks: {}, details: {} };
  }
  mark('build');
  // The finder only ever sees the scenario's own namespaces.
  const events = new MemoryEventSink();
  const nets = podNetworksFor(await lab.inodes(), events);
  const check = (mode: string, name: string, ok: boolean, detail?: unknown) => {
    const r = out[mode]!;
    r.checks[name] = ok;
    if (detail !== undefined) r.details[name] = detail;
  };
  const setups = scenarios.map((s) => setupFor(s, pods.get(s.mode)!));
  try {
    const first = await nets.set(setups);
    mark('set');
    for (const s of scenarios) {
      const st = first.pods.find((p) => p.pod.name === `web-${s.mode}`);
      check(s.mode, 'ready', st?.state === 'ready', st);
      check(s.mode, 'owned', true, await ownedState(runCommand, pods.get(s.mode)!.netns));
    }
    const probes = await lab.probeAll(scenarios.map((s) => s.vip), PORT);
    mark('probe');
    for (const s of scenarios) {
      const p = probes[s.vip];
      check(s.mode, 'clientSourceKept', p?.udp?.serverSaw === CLIENT_IP && p?.tcp?.serverSaw === CLIENT_IP, p);
      check(s.mode, 'tcpFromVip', p?.tcp?.serverLocal === s.vip);
      const from = await lab.ping(s.vip);
      check(s.mode, 'pingFromVip', from === s.vip, from ?? 'no reply');
      const want = s.settings ?? {};
      const got = await settingsIn(pods.get(s.mode)!.netns, Object.keys(want));
      for (const [path, ok] of Object.entries(want)) check(s.mode, path, got[path] !== undefined && ok(got[path]!), got[path]);
    }
    mark('checks');
    const again = await nets.set(setups);
    for (const s of scenarios) check(s.mode, 'idempotent', again.ops === 0, again.ops);
    mark('idempotent');
    const removed = await nets.set([]);
    mark('removed');
    for (const s of scenarios) {
      const after = await ownedState(runCommand, pods.get(s.mode)!.netns);
      check(s.mode, 'nothingLeft', after.links.length + after.addresses.length + after.mplsRoutes.length === 0, { removeOps: removed.ops, after });
    }
  } catch (err) {
    for (const s of scenarios) check(s.mode, 'noException', false, String(err));
  } finally {
    await nets.stop();
  }
  for (const s of scenarios) {
    const r = out[s.mode]!;
    r.ok = Object.values(r.checks).every(Boolean);
    r.details.events = events.events.filter((e) => e.ref.name === `web-${s.mode}`).map((e) => `${e.type} ${e.reason}: ${e.message}`);
    r.details.ms = ms;
  }
  return out;
}

/** Started: its set() runs on the reconcile loop, which waits for start(). */
export function podNetworksFor(mine: ReadonlySet<number>, events?: MemoryEventSink): PodNetworks {
  const nets = new PodNetworks({ encap: { mode: 'gre', ...ENCAP }, ...(events ? { events } : {}), finder: new NamespaceFinder({ accept: (c) => mine.has(c.inode) }) });
  nets.start();
  return nets;
}
