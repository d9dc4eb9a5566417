// The lab in container mode, for real: `kst lab up --runtime podman` runs every node's agent
// and gobgpd as containers of the image scripts/build-image.sh built, from deploy/base's
// DaemonSet, and the echo pods as containers whose namespaces podman made. Asserts that the
// running containers agree with the manifest, that the demo passes with pods that have no
// /run/netns name, and that `down` leaves nothing: no container, pod or volume of the lab,
// the host's ip_forward and nft ruleset as before, no podman bridge.
// Skipped, saying why (and in the what-ran-where table), only where podman or the image is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { buildTopology, hostsByRole, kubeNodes, labPaths, type DemoReport } from '../../src/lab/index.js';
import { repoRoot } from '../../src/lab/paths.js';
import { labPodTemplate, templateImage } from '../../src/lab/runtime/container-lab.js';
import { resolveEnv } from '../../src/lab/runtime/pod-template.js';
import { LAB_LABEL } from '../../src/lab/runtime/podman-plan.js';
import { recordKernelSuite } from '../support/kernel-report.js';

const prefix = process.env.KST_TEST_LAB_PREFIX ?? `ksttest-c${(process.pid % 46656).toString(36)}-`;
const root = repoRoot();
const cli = join(root, 'dist/src/cli/main.js');
const env = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? join(root, 'scripts/podman/containers.conf') };
const SUITE = 'lab in container mode (podman, DaemonSet from deploy/base)';

function podman(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('podman', args, { encoding: 'utf8', env, timeout: 120000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function kst(...args: string[]): { code: number; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [cli, 'lab', ...args, '--prefix', prefix], { encoding: 'utf8', env, timeout: 400000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}
const hostState = () => ({
  ipForward: spawnSync('sysctl', ['-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).stdout.trim(),
  nftRuleset: spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout,
  // podman's default bridge would appear as podman0 / cni-podman0 in the root namespace.
  podmanBridges: spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }).stdout.match(/"(cni-)?podman\d+"/g) ?? [],
});
const labObjects = () => ({
  containers: podman('ps', '--all', '--filter', `label=${LAB_LABEL}=${prefix}`, '--format', '{{.Names}}').stdout.split('\n').filter(Boolean),
  pods: podman('pod', 'ps', '--filter', `label=${LAB_LABEL}=${prefix}`, '--format', '{{.Name}}').stdout.split('\n').filter(Boolean),
  volumes: podman('volume', 'ls', '--filter', `label=${LAB_LABEL}=${prefix}`, '--format', '{{.Name}}').stdout.split('\n').filter(Boolean),
});

const template = labPodTemplate();
const image = templateImage(template);
const why = process.getuid?.() !== 0 ? 'needs root'
  : podman('version').code !== 0 ? `podman cannot run here: ${podman('version').stderr.trim().split('\n')[0] || 'not installed'} (bash scripts/install-deps.sh --containers)`
    : podman('image', 'exists', image).code !== 0 ? `image ${image} not built (bash scripts/build-image.sh)` : undefined;
if (why) {
  console.log(`lab container e2e: SKIPPED, ${why}`);
  recordKernelSuite({ suite: SUITE, kernel: 'host', outcome: 'skipped', why });
} else recordKernelSuite({ suite: SUITE, kernel: 'host' });

(why ? describe.skip : describe)('the lab with a container runtime (kst lab up --runtime podman)', () => {
  const topo = buildTopology({ prefix });
  const before = hostState();
  let up = false;
  afterAll(() => {
    kst('down');
    const left = labObjects();
    if (left.containers.length || left.pods.length) podman('pod', 'rm', '--force', ...left.pods);
    for (const ns of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix))) {
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(labPaths(prefix).dir, { recursive: true, force: true });
  });

  it('comes up with every agent, gobgpd and echo pod as a container', () => {
    if (!existsSync(cli)) throw new Error(`${cli} missing: run \`npm run build\` first (npm test does)`);
    const r = kst('up', '--runtime', 'podman');
    console.log(`lab container e2e: up in ${r.ms} ms\n${r.stdout}${r.stderr}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const names = podman('ps', '--filter', `label=${LAB_LABEL}=${prefix}`, '--format', '{{.Names}}').stdout.split('\n').filter(Boolean).sort();
    const expected = [
      ...kubeNodes(topo).flatMap((n) => template.containers.map((c) => `${prefix}${n.name}-${c.name}`)),
      ...hostsByRole(topo, 'pod').map((p) => `${prefix}${p.name}-echo`),
    ].sort();
    expect(names).toEqual(expected);
    up = true;
  }, 300000);

  it('runs the containers exactly as deploy/base\'s DaemonSet says', () => {
    if (!up) return;
    const node = kubeNodes(topo)[0]!;
    for (const c of template.containers) {
      const inspect = (JSON.parse(podman('inspect', '--type', 'container', `${prefix}${node.name}-${c.name}`).stdout) as Array<{
        ImageName: string; Config: { Env: string[]; Entrypoint: string | string[]; Cmd: string[] | null };
        HostConfig: { CapAdd: string[] | null; CapDrop: string[] | null; ReadonlyRootfs: boolean; NetworkMode: string; PidMode: string; Memory: number; Privileged: boolean };
        Mounts: Array<{ Destination: string; RW: boolean }>; EffectiveCaps: string[] | null;
      }>)[0]!;
      const at = `${c.name}`;
      expect({ at, image: inspect.ImageName }).toEqual({ at, image: image });
      expect({ at, network: inspect.HostConfig.NetworkMode, pid: inspect.HostConfig.PidMode }).toEqual({ at, network: `ns:/run/netns/${node.netns}`, pid: 'host' });
      expect({ at, readOnly: inspect.HostConfig.ReadonlyRootfs }).toEqual({ at, readOnly: c.readOnlyRootFilesystem });
      expect({ at, privileged: inspect.HostConfig.Privileged }).toEqual({ at, privileged: c.privileged });
      // The capabilities the process really has: exactly the manifest's add list (all, privileged).
      if (!c.privileged) expect({ at, caps: [...(inspect.EffectiveCaps ?? [])].map((x) => x.replace(/^CAP_/, '')).sort() }).toEqual({ at, caps: [...c.capAdd].sort() });
      else expect({ at, caps: inspect.EffectiveCaps }).toEqual({ at, caps: expect.arrayContaining(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE']) });
      const entry = [inspect.Config.Entrypoint].flat().filter(Boolean);
      if (c.command) expect({ at, entry }).toEqual({ at, entry: c.command });
      expect({ at, args: inspect.Config.Cmd ?? [] }).toEqual({ at, args: c.args });
      const want = resolveEnv(c.env, { nodeName: node.name, podName: '', namespace: template.namespace, uid: '' });
      for (const [k, v] of Object.entries(want)) {
        const got = inspect.Config.Env.find((e) => e.startsWith(`${k}=`));
        // POD_NAME and POD_UID are the lab's per-node pod; the rest is the manifest's literally.
        expect({ at, k, set: got !== undefined, value: ['POD_NAME', 'POD_UID'].includes(k) ? 'per pod' : got }).toEqual({ at, k, set: true, value: ['POD_NAME', 'POD_UID'].includes(k) ? 'per pod' : `${k}=${v}` });
      }
      for (const m of c.mounts) {
        const got = inspect.Mounts.find((x) => x.Destination === m.mountPath);
        expect({ at, mount: m.mountPath, rw: got?.RW }).toEqual({ at, mount: m.mountPath, rw: !m.readOnly });
      }
    }
  });

  it('schedules every container on its own: a top-level cgroup of its own, as the default mode\'s host processes', () => {
    if (!up) return;
    // Under podman's shared /libpod_parent all the lab's containers got one host process's CPU
    // share on a busy machine, and the agents missed BFD transmits (docs/lab.md, "Container mode").
    const cpuCgroup = (pid: number): string => {
      const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':'));
      const v1 = lines.find(([, ctrl]) => ctrl!.split(',').includes('cpu'));
      return (v1 ?? lines.find(([id]) => id === '0'))!.slice(2).join(':');
    };
    const names = labObjects().containers;
    const groups = names.map((n) => ({ n, cgroup: cpuCgroup(Number(podman('inspect', '--format', '{{.State.Pid}}', n).stdout.trim())) }));
    for (const g of groups) expect({ container: g.n, topLevel: /^\/[^/]+$/.test(g.cgroup) }).toEqual({ container: g.n, topLevel: true });
    expect(new Set(groups.map((g) => g.cgroup)).size).toBe(names.length);
  });

  it('demo passes; the pods\' namespaces are the runtime\'s, with no /run/netns name', () => {
    if (!up) return;
    const named = new Set(readdirSync('/run/netns').map((n) => statSync(join('/run/netns', n)).ino));
    const status = JSON.parse(kst('status', '--json').stdout) as { up: boolean; processes: Array<{ kind: string; pid: number; container?: string }> };
    expect(status.up).toBe(true);
    const echo = status.processes.filter((p) => p.kind === 'echo');
    expect(echo).toHaveLength(hostsByRole(topo, 'pod').length);
    for (const p of echo) expect({ pod: p.container, named: named.has(statSync(`/proc/${p.pid}/ns/net`).ino) }).toEqual({ pod: p.container, named: false });

    const r = kst('demo', '--json');
    const report = JSON.parse(r.stdout) as DemoReport;
    console.log(`lab container e2e demo:\n${report.steps.map((s) => `  ${s.ok ? 'ok    ' : 'FAILED'} ${s.name}: ${s.detail}`).join('\n')}`);
    for (const s of report.steps) expect({ step: s.name, ok: s.ok }).toEqual({ step: s.name, ok: true });
  }, 300000);

  it('down stops the pods as the kubelet does and leaves nothing behind', () => {
    if (!up) return;
    const r = kst('down');
    console.log(`lab container e2e: down in ${r.ms} ms\n${r.stdout}`);
    expect(r.code).toBe(0);
    // gobgpd's preStop hook (sleep 15 in the manifest) ran before it was stopped.
    const preStop = template.containers.find((c) => c.preStop?.[0] === 'sleep');
    if (preStop) expect(r.ms).toBeGreaterThanOrEqual(Number(preStop.preStop![1]) * 1000);
    expect(labObjects()).toEqual({ containers: [], pods: [], volumes: [] });
    expect(hostState()).toEqual(before);
  }, 120000);
});
