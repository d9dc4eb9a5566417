// Which changes of a new config version the running agent takes live, and which need a restart.
import { describe, expect, test } from '@jest/globals';
import { classifyConfigChange, configHash, parseConfig, type Config } from '../../src/config/index.js';

function config(raw: Record<string, unknown>): Config {
  const r = parseConfig(raw);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  return r.config;
}

const base = {
  nodeName: 'n1',
  pools: [{ name: 'web', cidrs: ['203.0.113.0/24'] }],
  bgp: { asn: 64512, peers: [{ address: '192.0.2.1', asn: 65100 }] },
};
const running = config(base);
const noBfd = { bfd: false };

describe('classifyConfigChange', () => {
  test('the same configuration, however written, is unchanged and has the same hash', () => {
    const again = config({ bgp: { peers: [{ asn: 65100, address: '192.0.2.1' }], asn: 64512 }, pools: [{ cidrs: ['203.0.113.0/24'], name: 'web', communities: [] }], nodeName: 'n1' });
    expect(classifyConfigChange(running, again, noBfd)).toEqual({ kind: 'unchanged' });
    expect(configHash(again)).toBe(configHash(running));
    expect(configHash(running)).toMatch(/^[0-9a-f]{12}$/);
  });

  test('a peer added and a pool\'s communities changed are live', () => {
    const next = config({
      ...base,
      pools: [{ name: 'web', cidrs: ['203.0.113.0/24'], communities: ['64512:100'], largeCommunities: ['64512:1:2'], localPref: 150 }],
      bgp: { asn: 64512, peers: [...base.bgp.peers, { address: '2001:db8::1', asn: 65100 }] },
    });
    expect(classifyConfigChange(running, next, noBfd)).toEqual({ kind: 'live', changed: ['bgp.peers', 'pools'] });
    expect(configHash(next)).not.toBe(configHash(running));
  });

  test('log level, selectors, router id, AS, maintenance settings and BFD profiles are live', () => {
    const next = config({
      ...base,
      logLevel: 'debug',
      tunnelNodeSelector: 'role=edge',
      bgp: { ...base.bgp, asn: 64513, routerId: '192.0.2.9', maintenanceTaint: 'x/y', withdrawWhenCordoned: true },
      bfd: { profiles: { fast: { minTxMs: 100, minRxMs: 100 } } },
    });
    const c = classifyConfigChange(running, next, noBfd);
    expect(c).toEqual({ kind: 'live', changed: ['bfd.profiles', 'bgp.asn', 'bgp.maintenanceTaint', 'bgp.routerId', 'bgp.withdrawWhenCordoned', 'logLevel', 'tunnelNodeSelector'] });
  });

  test.each([
    ['encapsulation.mode', { encapsulation: { mode: 'vxlan-lwt' } }, 'encapsulation.mode'],
    ['buckets', { buckets: 128 }, 'buckets'],
    ['hashSeed', { hashSeed: 7 }, 'hashSeed'],
    ['gobgpd socket', { bgp: { ...base.bgp, grpcAddress: '127.0.0.1:50052' } }, 'bgp.grpcAddress'],
    ['listen port', { bgp: { ...base.bgp, listenPort: 179 } }, 'bgp.listenPort'],
    ['graceful restart', { bgp: { ...base.bgp, gracefulRestart: { enabled: false } } }, 'bgp.gracefulRestart'],
    ['API address', { api: { listen: '127.0.0.1:9999' } }, 'api.listen'],
    ['dataplane', { dataplane: { coalesceMs: 5 } }, 'dataplane.coalesceMs'],
  ])('%s needs a restart, also when live fields change with it', (_name, over, field) => {
    const next = config({ ...base, ...over, pools: [{ name: 'web', cidrs: ['203.0.113.0/24'], communities: ['64512:1'] }] });
    const c = classifyConfigChange(running, next, noBfd);
    expect(c.kind).toBe('needs-restart');
    if (c.kind !== 'needs-restart') return;
    expect(c.restartFields).toEqual([field]);
    expect(c.changed).toContain('pools');
    expect(c.why).toContain(field);
  });

  test('the first BFD peer needs a restart when the agent runs no BFD; with BFD running it is live', () => {
    const next = config({ ...base, bgp: { asn: 64512, peers: [{ address: '192.0.2.1', asn: 65100, bfdProfile: 'fast' }] }, bfd: { profiles: { fast: {} } } });
    const c = classifyConfigChange(running, next, { bfd: false });
    expect(c).toMatchObject({ kind: 'needs-restart', restartFields: ['bgp.peers[].bfdProfile'] });
    expect(classifyConfigChange(running, next, { bfd: true })).toEqual({ kind: 'live', changed: ['bfd.profiles', 'bgp.peers'] });
  });
});
