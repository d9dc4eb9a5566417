// The lab's pure parts: topology invariants, the kernel plan and FRR config (golden files;
// UPDATE_GOLDEN=1 rewrites them on purpose), the agents' config, the seed objects.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { expectGolden } from '../support/golden.js';
import { parseAllDocuments } from 'yaml';
import { configSchema } from '../../src/config/index.js';
import {
  agentConfig, buildTopology, hostsByRole, kubeNodes, networkPlan, primaryIp, primaryIp6, renderPlan, routerConfig, seedObjects, seedYaml, validatePrefix,
} from '../../src/lab/index.js';
import { LINK_PREFIX } from '../../src/system/index.js';

const here = dirname(fileURLToPath(import.meta.url));

const golden = (name: string, actual: string): void => expectGolden(join(here, 'golden'), name, actual);

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}
function inCidr(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(len));
  return Math.floor(ipToInt(ip) / size) === Math.floor(ipToInt(net) / size);
}
const DOC_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'];

describe('lab topology', () => {
  const topo = buildTopology();

  it('has the roles the issue asks for', () => {
    expect(hostsByRole(topo, 'router')).toHaveLength(1);
    expect(hostsByRole(topo, 'client')).toHaveLength(1);
    expect(hostsByRole(topo, 'apiserver')).toHaveLength(1);
    expect(hostsByRole(topo, 'tunnel-node').map((h) => h.name)).toEqual(['tunnel-1', 'tunnel-2']);
    expect(hostsByRole(topo, 'serving-node').map((h) => h.name)).toEqual(['worker-1', 'worker-2']);
    expect(hostsByRole(topo, 'pod').length).toBeGreaterThanOrEqual(4);
    for (const t of hostsByRole(topo, 'tunnel-node')) expect(t.labels?.node).toBe('tunnel');
    for (const w of hostsByRole(topo, 'serving-node')) expect(w.labels?.node).toBeUndefined();
  });

  it('names every namespace with the prefix, uniquely', () => {
    const custom = buildTopology({ prefix: 'ksttest-x1-' });
    const names = custom.hosts.map((h) => h.netns);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n.startsWith('ksttest-x1-')).toBe(true);
  });

  it('uses interface names the kernel accepts and the agent does not own', () => {
    const ifnames = [...topo.links.flatMap((l) => [l.a.ifname, l.b.ifname]), ...topo.bridges.map((b) => b.ifname)];
    for (const n of ifnames) {
      expect(n.length).toBeLessThanOrEqual(15);
      expect(n.startsWith(LINK_PREFIX)).toBe(false);
    }
    // Within one namespace, no name twice.
    for (const h of topo.hosts) {
      const mine = topo.links.flatMap((l) => [...(l.a.host === h.name ? [l.a.ifname] : []), ...(l.b.host === h.name ? [l.b.ifname] : [])]);
      expect(new Set(mine).size).toBe(mine.length);
    }
  });

  it('uses only documentation ranges (plus the link-local pod gateways), each address once', () => {
    const seen = new Map<string, string>();
    for (const h of topo.hosts) {
      for (const a of h.addresses) {
        const ip = a.cidr.split('/')[0]!;
        if (ip === '169.254.1.1' || ip === 'fe80::1') continue;
        if (ip.includes(':')) expect(ip.startsWith('2001:db8:')).toBe(true);
        else expect(DOC_RANGES.some((r) => inCidr(ip, r))).toBe(true);
        expect(seen.get(ip)).toBeUndefined();
        seen.set(ip, h.name);
      }
    }
    for (const v of topo.vips) expect(inCidr(v.address, '203.0.113.0/24')).toBe(true);
    for (const v of topo.vips) expect(v.address6?.startsWith('2001:db8:')).toBe(true);
  });

  it('is dual-stack from the client to every pod: IPv6 on client, router, nodes and pods, routed both ways', () => {
    expect(primaryIp6(hostsByRole(topo, 'client')[0]!)).toBeDefined();
    expect(hostsByRole(topo, 'router')[0]!.addresses.filter((a) => a.cidr.includes(':'))).toHaveLength(2);
    for (const n of kubeNodes(topo)) expect(primaryIp6(n)).toBeDefined();
    for (const pod of hostsByRole(topo, 'pod')) {
      const node = topo.hosts.find((h) => h.name === pod.node)!;
      const ip6 = primaryIp6(pod)!;
      expect(ip6.startsWith(node.podCidr6!.replace('::/64', ':'))).toBe(true);
      expect(node.routes.some((r) => r.dst === `${ip6}/128` && r.dev)).toBe(true);
      expect(pod.routes).toContainEqual(expect.objectContaining({ dst: '::/0' }));
    }
    for (const w of hostsByRole(topo, 'serving-node')) {
      for (const h of [...hostsByRole(topo, 'tunnel-node'), ...hostsByRole(topo, 'router')]) {
        expect(h.routes).toContainEqual({ dst: w.podCidr6, via: primaryIp6(w) });
      }
    }
  });

  it('puts each pod inside its node\'s pod CIDR, with a /32 route on the node', () => {
    for (const pod of hostsByRole(topo, 'pod')) {
      const node = topo.hosts.find((h) => h.name === pod.node)!;
      expect(node.role).toBe('serving-node');
      expect(inCidr(primaryIp(pod), node.podCidr!)).toBe(true);
      expect(node.routes.some((r) => r.dst === `${primaryIp(pod)}/32` && r.dev)).toBe(true);
    }
  });

  it('routes every pod CIDR from the tunnel nodes and the router', () => {
    for (const w of hostsByRole(topo, 'serving-node')) {
      for (const h of [...hostsByRole(topo, 'tunnel-node'), ...hostsByRole(topo, 'router')]) {
        expect(h.routes).toContainEqual({ dst: w.podCidr, via: primaryIp(w) });
      }
    }
  });

  it('rejects prefixes that are not safe names', () => {
    expect(validatePrefix('kstlab-')).toBe('kstlab-');
    for (const bad of ['', 'kstlab', 'Kst-', '../x-', 'a b-', `${'x'.repeat(40)}-`]) {
      expect(() => buildTopology({ prefix: bad })).toThrow(/lab prefix/);
    }
  });
});

describe('derived from the topology', () => {
  const topo = buildTopology();

  it('plans the kernel commands (golden) and never addresses the root namespace', () => {
    const steps = networkPlan(topo);
    for (const s of steps) {
      const scoped = s.netns !== undefined || (s.args[0] === '-n') || (s.args[0] === 'netns' && ['add', 'del'].includes(s.args[1]!));
      expect(scoped).toBe(true);
    }
    golden('network-plan.txt', `${renderPlan(steps)}\n`);
  });

  it('configures FRR with every tunnel node as a BFD-watched ECMP neighbour, per family (golden)', () => {
    const conf = routerConfig(topo);
    for (const t of hostsByRole(topo, 'tunnel-node')) {
      expect(conf.bgpdConf).toContain(` neighbor ${primaryIp(t)} remote-as ${topo.nodeAsn}`);
      expect(conf.bgpdConf).toMatch(new RegExp(` neighbor ${primaryIp(t).replace(/\./g, '\\.')} bfd profile \\S+`));
      // IPv6 VIPs come over the node's IPv6 session, activated for IPv6 unicast only.
      expect(conf.bgpdConf).toContain(` neighbor ${primaryIp6(t)!} remote-as ${topo.nodeAsn}`);
      expect(conf.bgpdConf.split(' address-family ipv6 unicast')[1]).toContain(`  neighbor ${primaryIp6(t)!} activate`);
    }
    expect(conf.bgpdConf).toContain('maximum-paths');
    expect(conf.bfddConf).toContain('transmit-interval 100');
    expect(conf.bfddConf).toContain('detect-multiplier 3');
    golden('frr-bgpd.conf', conf.bgpdConf);
    golden('frr-bfdd.conf', conf.bfddConf);
  });

  it('writes an agent config the config schema accepts, in vxlan-lwt mode, peering with the router', () => {
    const parsed = configSchema.parse(agentConfig(topo));
    expect(parsed.encapsulation.mode).toBe('vxlan-lwt');
    expect(parsed.bgp.peers).toEqual([
      expect.objectContaining({ address: topo.router.address, asn: topo.router.asn }),
      expect.objectContaining({ address: topo.router.address6, asn: topo.router.asn }),
    ]);
    const profile = parsed.bgp.peers[0]!.bfdProfile!;
    expect(parsed.bfd.profiles[profile]).toEqual({ minTxMs: 100, minRxMs: 100, multiplier: 3 });
    expect(parsed.pools[0]!.cidrs.some((c) => topo.vips.every((v) => inCidr(v.address, c)))).toBe(true);
    expect(parsed.pools[0]!.cidrs).toContain('2001:db8:4b53:ff::/64');
  });

  it('deploy/examples/lab/cluster.yaml, which `kst lab up` seeds from, matches the topology', () => {
    const file = new URL('../../deploy/examples/lab/cluster.yaml', import.meta.url);
    const header = readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('# ') && !l.startsWith('# Generated')).slice(0, 4).join('\n');
    const expected = `${header}\n${seedYaml(buildTopology())}`;
    if (process.env.UPDATE_GOLDEN) writeFileSync(file, expected);
    expect(readFileSync(file, 'utf8')).toBe(expected);
  });

  it('seeds Nodes, Pods, the annotated Service and its EndpointSlice with the lab\'s real addresses', () => {
    const objs = seedObjects(topo);
    const nodes = objs.filter((o) => o.kind === 'Node');
    expect(nodes.map((n) => n.metadata.name).sort()).toEqual(kubeNodes(topo).map((h) => h.name).sort());
    for (const n of kubeNodes(topo)) {
      const obj = nodes.find((o) => o.metadata.name === n.name)! as unknown as { status: { addresses: Array<{ type: string; address: string }> } };
      expect(obj.status.addresses).toContainEqual({ type: 'InternalIP', address: primaryIp(n) });
    }
    const svc = objs.find((o) => o.kind === 'Service')!;
    expect((svc.metadata.annotations as Record<string, string>)['cmd.nu/tunnel']).toBe(`${topo.vips[0]!.address}, ${topo.vips[0]!.address6!}`);
    type Slice = { metadata: { labels: Record<string, string> }; addressType: string; endpoints: Array<{ addresses: string[]; nodeName: string }> };
    const [slice, slice6] = objs.filter((o) => o.kind === 'EndpointSlice') as unknown as Slice[];
    expect(slice!.metadata.labels['kubernetes.io/service-name']).toBe(svc.metadata.name);
    const pods = hostsByRole(topo, 'pod');
    expect(slice!.endpoints.map((e) => [e.addresses[0], e.nodeName])).toEqual(pods.map((p) => [primaryIp(p), p.node]));
    // The IPv6 VIP's endpoints: a slice of its own (one family per slice), the pods' IPv6 addresses.
    expect(slice6!.addressType).toBe('IPv6');
    expect(slice6!.metadata.labels['kubernetes.io/service-name']).toBe(svc.metadata.name);
    expect(slice6!.endpoints.map((e) => [e.addresses[0], e.nodeName])).toEqual(pods.map((p) => [primaryIp6(p), p.node]));
    const podObj = objs.find((o) => o.kind === 'Pod')! as unknown as { status: { podIPs: Array<{ ip: string }> } };
    expect(podObj.status.podIPs.map((x) => x.ip)).toEqual([primaryIp(pods[0]!), primaryIp6(pods[0]!)]);
    // Parses back as YAML documents, one per object.
    expect(parseAllDocuments(seedYaml(topo)).filter((d) => d.toJSON() !== null)).toHaveLength(objs.length);
  });
});
