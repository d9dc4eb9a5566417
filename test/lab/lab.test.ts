// `kst lab up --no-agents` for real, through the compiled CLI, under a test-only prefix so
// it never meets a lab a human is running: status is sane, traffic flows client -> router
// -> nodes -> pods, up is idempotent, and down leaves no namespace and no process behind,
// also when the state file is gone (a crash).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { buildTopology, hostsByRole, labPaths, primaryIp, primaryIp6 } from '../../src/lab/index.js';
import { repoRoot } from '../../src/lab/paths.js';
import { runCommand } from '../../src/system/index.js';

const prefix = `ksttest-${(process.pid % 46656).toString(36)}-`;
const root = repoRoot();
const cli = join(root, 'dist/src/cli/main.js');
const topo = buildTopology({ prefix });

function kst(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, 'lab', ...args, '--prefix', prefix], { encoding: 'utf8', timeout: 60000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function labNamespacesNow(): Promise<string[]> {
  const r = await runCommand('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie waiting for its reaper is gone for our purposes.
  const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout;
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

interface StatusJson {
  up: boolean;
  hosts: Array<{ name: string; role: string; netns: string; present: boolean; addresses: string[] }>;
  vips: Array<{ address: string }>;
  router: { frrVtyDir: string; netns: string };
  apiServer: { url: string };
  agents: { running: boolean; note: string };
  processes: Array<{ kind: string; pid: number; alive: boolean }>;
}

describe('kst lab (real namespaces, FRR, API server, echo servers)', () => {
  afterAll(async () => {
    // Whatever happened above: nothing of this test's lab may survive it.
    kst('down');
    for (const ns of await labNamespacesNow()) await runCommand('ip', ['netns', 'del', ns], { allowFailure: true });
    rmSync(labPaths(prefix).dir, { recursive: true, force: true });
  });

  let pids: number[] = [];

  it('refuses without root, and without the programs it needs, installing nothing', async () => {
    const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'lab', 'up', '--prefix', prefix], { encoding: 'utf8' });
    expect(asNobody.status).toBe(1);
    expect(asNobody.stderr).toMatch(/needs root/);
    // A PATH with ip, sysctl and nft but without gobgpd and vtysh.
    const bin = mkdtempSync(join(tmpdir(), 'kst-lab-path-'));
    try {
      for (const p of ['ip', 'sysctl', 'nft']) symlinkSync((await runCommand('which', [p])).stdout.trim(), join(bin, p));
      const r = spawnSync(process.execPath, [cli, 'lab', 'up', '--prefix', prefix], { encoding: 'utf8', env: { ...process.env, PATH: bin } });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/program "gobgpd" not found: run `bash scripts\/install-deps.sh`/);
      expect(r.stderr).toMatch(/program "vtysh" not found/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    expect(await labNamespacesNow()).toEqual([]);
  });

  it('builds the lab without agents and describes it', () => {
    if (!existsSync(cli)) throw new Error(`${cli} missing: run \`npm run build\` first (npm test does)`);
    const up = kst('up', '--no-agents');
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/agents: not started \(--no-agents\)/);

    const st = kst('status', '--json');
    expect(st.code).toBe(0);
    const s = JSON.parse(st.stdout) as StatusJson;
    expect(s.up).toBe(true);
    expect(s.hosts.map((h) => h.netns).sort()).toEqual(topo.hosts.map((h) => h.netns).sort());
    expect(s.hosts.every((h) => h.present && h.addresses.length > 0)).toBe(true);
    expect(s.vips.map((v) => v.address)).toEqual(['203.0.113.10']);
    expect(existsSync(join(s.router.frrVtyDir, 'bgpd.vty'))).toBe(true);
    expect(s.apiServer.url).toBe('http://192.0.2.2:6443');
    expect(s.agents.running).toBe(false);
    expect(s.processes.map((p) => p.kind).sort()).toEqual(['apiserver', 'echo', 'echo', 'echo', 'echo', 'frr-bfdd', 'frr-bgpd', 'frr-zebra']);
    expect(s.processes.every((p) => p.alive)).toBe(true);
    pids = s.processes.map((p) => p.pid);
  });

  it('carries traffic client -> router -> nodes -> pods', async () => {
    const client = topo.hosts.find((h) => h.role === 'client')!;
    const probe = join(root, 'dist/src/lab/probe.js');
    for (const pod of hostsByRole(topo, 'pod')) {
      const node = topo.hosts.find((h) => h.name === pod.node)!;
      await runCommand('ping', ['-c', '1', '-W', '2', primaryIp(pod)], { netns: node.netns });
      await runCommand('ping', ['-c', '1', '-W', '2', primaryIp(pod)], { netns: client.netns });
      // The echo server answers from another node, over the node network, and sees that node's address.
      const from = hostsByRole(topo, 'tunnel-node')[0]!;
      const r = await runCommand(process.execPath, [probe, 'flows', '--target', `${primaryIp(pod)}:8080`, '--count', '2', '--proto', 'tcp'], { netns: from.netns });
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: 2, perPod: { [pod.name]: 2 }, clientAddresses: [primaryIp(from)] });
      // Dual-stack: the same over IPv6, from the client across the router (TCP and UDP).
      for (const proto of ['tcp', 'udp']) {
        const r6 = await runCommand(process.execPath, [probe, 'flows', '--target', `[${primaryIp6(pod)!}]:8080`, '--count', '2', '--proto', proto], { netns: client.netns });
        expect(JSON.parse(r6.stdout)).toMatchObject({ ok: 2, perPod: { [pod.name]: 2 }, clientAddresses: [primaryIp6(client)] });
      }
    }
    // The API server answers the nodes with the seeded objects.
    const api = await runCommand(process.execPath, [probe, 'http', '--method', 'GET', '--url', 'http://192.0.2.2:6443/api/v1/nodes'], { netns: hostsByRole(topo, 'tunnel-node')[0]!.netns });
    const nodes = JSON.parse(api.stdout) as { status: number; body: { items: Array<{ metadata: { name: string } }> } };
    expect(nodes.status).toBe(200);
    expect(nodes.body.items.map((n) => n.metadata.name)).toEqual(['tunnel-1', 'tunnel-2', 'worker-1', 'worker-2']);
  });

  it('is idempotent: a second up says it is already up', () => {
    const again = kst('up', '--no-agents');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already up/);
  });

  it('down removes every namespace and process it made', async () => {
    const down = kst('down');
    expect(down.code).toBe(0);
    expect(await labNamespacesNow()).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(labPaths(prefix).dir)).toBe(false);
    expect(kst('status').code).toBe(1);
  });

  it('down also cleans up after a crash that lost the state file', async () => {
    expect(kst('up', '--no-agents').code).toBe(0);
    const s = JSON.parse(kst('status', '--json').stdout) as StatusJson;
    rmSync(labPaths(prefix).stateFile);
    const down = kst('down');
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/stopping 8 lab process/);
    expect(await labNamespacesNow()).toEqual([]);
    expect(s.processes.map((p) => p.pid).filter(alive)).toEqual([]);
  });
});
