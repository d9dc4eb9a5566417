// The racks lab's pure parts (issue 14): the topology's invariants, its kernel plan and
// router configurations (golden files; UPDATE_GOLDEN=1 rewrites them on purpose), and
// the agents' per-node peers as the real model derives them from the generated config and
// the seeded Nodes: each tunnel node dials only its own rack's ToR, with its rack's ASN.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { expectGolden } from '../support/golden.js';
import { configSchema } from '../../src/config/index.js';
import { convertNode } from '../../src/kube/index.js';
import {
  agentConfig, buildRacksTopology, buildTopology, hostsByRole, kubeNodes, networkPlan, NODE_ASN_ANNOTATION, primaryIp, primaryIp6, renderPlan,
  seedObjects, spineConfig, torBirdConfig, torFrrConfig, wantedVipRoutes, ZONE_LABEL, type LabRack,
} from '../../src/lab/index.js';
import { nodeBgp } from '../../src/model/index.js';
import { LINK_PREFIX } from '../../src/system/index.js';

const here = dirname(fileURLToPath(import.meta.url));

const golden = (name: string, actual: string): void => expectGolden(join(here, 'golden'), name, actual);

const topo = buildRacksTopology();
const [rack1, rack2] = topo.racks as [LabRack, LabRack];

describe('racks topology', () => {
  it('has a spine with the client, two racks each with a ToR, a tunnel node and a worker', () => {
    expect(topo.kind).toBe('racks');
    expect(hostsByRole(topo, 'router').map((h) => h.name)).toEqual(['spine']);
    expect(hostsByRole(topo, 'tor-router').map((h) => h.name)).toEqual(['tor-1', 'tor-2']);
    expect([rack1.torImpl, rack2.torImpl]).toEqual(['frr', 'bird']);
    expect(new Set([topo.router.asn, rack1.torAsn, rack2.torAsn, rack1.nodeAsn, rack2.nodeAsn]).size).toBe(5);
    for (const r of [rack1, rack2]) {
      expect(r.nodes.map((n) => kubeNodes(topo).find((h) => h.name === n)?.role).sort()).toEqual(['serving-node', 'tunnel-node']);
      for (const n of r.nodes) {
        const h = kubeNodes(topo).find((x) => x.name === n)!;
        expect(h.labels?.[ZONE_LABEL]).toBe(r.zone);
        expect(h.annotations?.[NODE_ASN_ANNOTATION]).toBe(String(r.nodeAsn));
      }
    }
    // The client hangs off the spine; the names the demo and drill use are the default lab's.
    expect(topo.links).toContainEqual({ a: { host: 'spine', ifname: 'c-client' }, b: { host: 'client', ifname: 'eth0' } });
    expect(kubeNodes(topo).map((h) => h.name).sort()).toEqual(kubeNodes(buildTopology()).map((h) => h.name).sort());
  });

  it('uses documentation ranges only, each address once, and interface names the agent does not own', () => {
    const seen = new Set<string>();
    for (const h of topo.hosts) {
      for (const a of h.addresses) {
        const ip = a.cidr.split('/')[0]!;
        if (ip === '169.254.1.1' || ip === 'fe80::1') continue;
        expect(ip.includes(':') ? ip.startsWith('2001:db8:') : /^(192\.0\.2|198\.51\.100|203\.0\.113)\./.test(ip)).toBe(true);
        expect(seen.has(ip)).toBe(false);
        seen.add(ip);
      }
    }
    for (const n of topo.links.flatMap((l) => [l.a.ifname, l.b.ifname])) {
      expect(n.length).toBeLessThanOrEqual(15);
      expect(n.startsWith(LINK_PREFIX)).toBe(false);
    }
  });

  it('plans the kernel commands (golden), every one inside a lab namespace', () => {
    const steps = networkPlan(buildRacksTopology({ prefix: 'kstlab-' }));
    for (const s of steps) expect(s.netns !== undefined || s.args[0] === '-n' || (s.args[0] === 'netns' && s.args[1] === 'add')).toBe(true);
    golden('racks-network-plan.txt', `${renderPlan(steps)}\n`);
  });

  it('configures the spine for ECMP over both racks and sends the ToRs nothing (golden)', () => {
    const c = spineConfig(topo);
    expect(c.bgpdConf).toContain('maximum-paths 8');
    expect(c.bgpdConf).toContain('bgp bestpath as-path multipath-relax');
    expect(c.bgpdConf).toMatch(/route-map TO-RACK deny 10/);
    for (const r of [rack1, rack2]) {
      expect(c.bgpdConf).toContain(` neighbor ${r.uplink.tor} remote-as ${r.torAsn}`);
      expect(c.bgpdConf).toContain(`  neighbor ${r.uplink.tor6} route-map TO-RACK out`);
    }
    // BFD profiles: 100 ms x 3 towards the nodes, 300 ms x 3 on the fabric links.
    expect(c.bfddConf).toMatch(/profile lab-fast\n {2}transmit-interval 100\n/);
    expect(c.bfddConf).toMatch(/profile lab-fabric\n {2}transmit-interval 300\n/);
    golden('racks-spine-bgpd.conf', c.bgpdConf);
  });

  it('configures each ToR with BFD towards its own tunnel node and the spine only (golden)', () => {
    const frr = torFrrConfig(topo, rack1);
    const t1 = hostsByRole(topo, 'tunnel-node').find((h) => rack1.nodes.includes(h.name))!;
    const t2 = hostsByRole(topo, 'tunnel-node').find((h) => rack2.nodes.includes(h.name))!;
    for (const p of [primaryIp(t1), primaryIp6(t1)!, rack1.uplink.spine, rack1.uplink.spine6]) expect(frr.bgpdConf).toContain(` neighbor ${p} bfd profile`);
    expect(frr.bgpdConf).not.toContain(primaryIp(t2));
    golden('racks-tor-1-bgpd.conf', frr.bgpdConf);
    const bird = torBirdConfig(topo, rack2);
    expect(bird).toContain(`neighbor ${primaryIp(t2)} as ${rack2.nodeAsn};`);
    expect(bird).toContain(`neighbor ${primaryIp6(t2)!} as ${rack2.nodeAsn};`);
    expect(bird).toContain('bfd on;');
    expect(bird).not.toContain(primaryIp(t1));
    golden('racks-tor-2-bird.conf', bird);
  });

  it('wants each ToR over its own tunnel node and the spine over both ToRs, per family', () => {
    const want = wantedVipRoutes(topo);
    expect(want).toContainEqual({ router: 'tor-1', vip: '203.0.113.10', nextHops: ['192.0.2.11'] });
    expect(want).toContainEqual({ router: 'tor-2', vip: '2001:db8:4b53:ff::10', nextHops: ['2001:db8:4b53:2::75'] });
    expect(want).toContainEqual({ router: 'spine', vip: '203.0.113.10', nextHops: [rack1.uplink.tor, rack2.uplink.tor] });
    expect(want).toContainEqual({ router: 'spine', vip: '2001:db8:4b53:ff::10', nextHops: [rack1.uplink.tor6, rack2.uplink.tor6] });
    // The default lab's wants are unchanged: no router named, every tunnel node.
    expect(wantedVipRoutes(buildTopology())[0]).toEqual({ vip: '203.0.113.10', nextHops: ['192.0.2.11', '192.0.2.12'] });
  });

  it('peers per node by selector: the model gives each tunnel node only its own ToR, with its rack\'s ASN', () => {
    const config = configSchema.parse(agentConfig(topo));
    const objs = seedObjects(topo);
    for (const r of [rack1, rack2]) {
      for (const name of r.nodes) {
        const node = convertNode(objs.find((o) => o.kind === 'Node' && o.metadata.name === name)).value!;
        const { plan, problems } = nodeBgp(config.bgp, name, node);
        expect(problems).toEqual([]);
        expect(plan.asn).toBe(r.nodeAsn);
        expect(plan.asnFrom).toBe('node annotation');
        const tunnel = hostsByRole(topo, 'tunnel-node').some((h) => h.name === name);
        // Workers are not tunnel nodes and dial nobody; a tunnel node dials its ToR per family.
        expect(plan.peers.map((p) => [p.address, p.asn, p.localAsn, p.bfdProfile !== undefined]).sort())
          .toEqual(tunnel ? [[r.torAddress, r.torAsn, r.nodeAsn, true], [r.torAddress6, r.torAsn, r.nodeAsn, true]].sort() : []);
      }
    }
  });

  it('seeds a dual-stack Service with both VIPs', () => {
    const svc = seedObjects(topo).find((o) => o.kind === 'Service')! as unknown as { metadata: { annotations: Record<string, string> }; spec: { ipFamilyPolicy?: string; ipFamilies?: string[] } };
    expect(svc.spec.ipFamilyPolicy).toBe('RequireDualStack');
    expect(svc.spec.ipFamilies).toEqual(['IPv4', 'IPv6']);
    expect(svc.metadata.annotations['cmd.nu/tunnel']).toBe('203.0.113.10, 2001:db8:4b53:ff::10');
    // The default lab's Service is left as it was.
    const plain = seedObjects(buildTopology()).find((o) => o.kind === 'Service')! as unknown as { spec: Record<string, unknown> };
    expect(plain.spec.ipFamilyPolicy).toBeUndefined();
  });
});
