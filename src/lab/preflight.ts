// What `kst lab up` needs before it touches anything: root, the programs it runs, the
// kernel features the vxlan-lwt data path uses, and the compiled JavaScript it starts in
// the namespaces. It installs nothing: it says what to run instead.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../system/index.js';

export interface PreflightProblem {
  readonly what: string;
  readonly fix: string;
}

const INSTALL = 'run `bash scripts/install-deps.sh` (as root)';

function onPath(program: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => d && existsSync(join(d, program)));
}

/** Compiled files the lab starts inside namespaces (relative to the repository root). */
export const LAB_ENTRYPOINTS = ['dist/src/lab/echo-server.js', 'dist/src/lab/probe.js', 'dist/src/lab/apiserver-main.js'] as const;

export async function preflight(repoRoot: string, scratchNetns: string, run: CommandRunner = runCommand): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    // Namespaces, veths and FRR's privilege drop all need root; nothing below would work.
    return [{ what: 'kst lab needs root (network namespaces, links, FRR)', fix: 'run it as root, e.g. `sudo kst lab up`' }];
  }
  for (const p of ['ip', 'nft', 'sysctl', 'gobgpd', 'vtysh']) {
    if (!onPath(p)) problems.push({ what: `program "${p}" not found`, fix: INSTALL });
  }
  for (const d of ['zebra', 'bgpd', 'bfdd']) {
    if (!existsSync(`/usr/lib/frr/${d}`)) problems.push({ what: `FRR daemon /usr/lib/frr/${d} not found`, fix: INSTALL });
  }
  for (const f of LAB_ENTRYPOINTS) {
    if (!existsSync(join(repoRoot, f))) problems.push({ what: `${f} not built`, fix: 'run `npm run build` in the repository' });
  }
  if (problems.some((p) => p.what.includes('"ip"'))) return problems;
  // The data path needs VXLAN with external (collect_md) devices: try one in a scratch namespace.
  try {
    await run('ip', ['netns', 'add', scratchNetns]);
    const vx = await run('ip', ['-n', scratchNetns, 'link', 'add', 'vxprobe', 'type', 'vxlan', 'external', 'dstport', '4789'], { allowFailure: true });
    if (vx.code !== 0) problems.push({ what: `the kernel cannot create VXLAN devices (${vx.stderr.trim()})`, fix: 'use a kernel with CONFIG_VXLAN (see docs/lab.md)' });
    const br = await run('ip', ['-n', scratchNetns, 'link', 'add', 'brprobe', 'type', 'bridge'], { allowFailure: true });
    if (br.code !== 0) problems.push({ what: `the kernel cannot create bridges (${br.stderr.trim()})`, fix: 'use a kernel with CONFIG_BRIDGE' });
    if (onPath('nft')) {
      const nft = await run('nft', ['add', 'table', 'inet', 'kst_lab_probe'], { netns: scratchNetns, allowFailure: true });
      if (nft.code !== 0) problems.push({ what: `nftables does not work (${nft.stderr.trim()})`, fix: 'use a kernel with CONFIG_NF_TABLES' });
    }
  } catch (err) {
    problems.push({ what: `cannot create a network namespace (${err instanceof Error ? err.message : String(err)})`, fix: 'run as root on a kernel with network namespaces' });
  } finally {
    await run('ip', ['netns', 'del', scratchNetns], { allowFailure: true });
  }
  return problems;
}
