// Reads a pod namespace for assertions: the project's objects, and everything else.
import type { CommandRunner } from '../../src/system/index.js';

interface AddrJson { ifname: string; addr_info?: Array<{ local: string; prefixlen: number; label?: string; scope?: string }> }

export async function ownedState(run: CommandRunner, netns: string): Promise<{ links: string[]; addresses: string[]; mplsRoutes: string[] }> {
  const links = JSON.parse((await run('ip', ['-n', netns, '-j', 'addr', 'show'])).stdout) as AddrJson[];
  const mpls = await run('ip', ['-n', netns, '-j', '-f', 'mpls', 'route', 'show'], { allowFailure: true });
  const mplsRoutes = mpls.code === 0 ? (JSON.parse(mpls.stdout || '[]') as Array<{ dst: string; protocol?: string }>).filter((r) => String(r.protocol) === '245' || r.protocol === 'kst').map((r) => String(r.dst)) : [];
  return {
    links: links.filter((l) => l.ifname.startsWith('kst')).map((l) => l.ifname),
    addresses: links.flatMap((l) => (l.addr_info ?? [])
      .filter((a) => (l.ifname.startsWith('kst') && a.scope !== 'link') || a.label === 'lo:kst')
      .map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)),
    mplsRoutes,
  };
}

/** Links, addresses and routes that are not the project's (must never change). */
export async function unrelatedState(run: CommandRunner, netns: string): Promise<{ links: string[]; addresses: string[]; routes: string }> {
  const links = JSON.parse((await run('ip', ['-n', netns, '-j', 'addr', 'show'])).stdout) as AddrJson[];
  const routes = (await run('ip', ['-n', netns, 'route', 'show', 'table', 'all'])).stdout
    .split('\n').filter((l) => l && !l.includes('kst')).sort().join('\n');
  return {
    links: links.filter((l) => !l.ifname.startsWith('kst')).map((l) => l.ifname).sort(),
    addresses: links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.label !== 'lo:kst' && !l.ifname.startsWith('kst')).map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort(),
    routes,
  };
}
