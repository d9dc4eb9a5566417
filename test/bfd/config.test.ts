import { afterAll, describe, expect, it } from '@jest/globals';
import { bfdSessionsFor, localAddressTowards } from '../../src/bfd/index.js';
import { configSchema } from '../../src/config/index.js';
import { NetnsSet } from '../../src/lab/index.js';

describe('BFD sessions from configuration', () => {
  const config = configSchema.parse({
    bfd: { profiles: { fast: { minTxMs: 100, minRxMs: 100, multiplier: 3 } } },
    bgp: {
      peers: [
        { address: '192.0.2.1', asn: 65000, bfdProfile: 'fast' },
        { address: '192.0.2.2', asn: 65000 },
        { address: '192.0.2.3', asn: 65000, bfdProfile: 'slow' },
        { address: '192.0.2.4', asn: 65000, bfdProfile: 'fast', multihopTtl: 4 },
        { address: '2001:db8::1', asn: 65000, bfdProfile: 'fast' },
      ],
    },
  });

  it('makes one session per peer with a known profile and names what is wrong with the others', () => {
    const plan = bfdSessionsFor(config.bgp.peers, config.bfd.profiles, (peer) => (peer === '2001:db8::1' ? undefined : '192.0.2.10'));
    expect(plan.sessions).toEqual([{ peer: '192.0.2.1', local: '192.0.2.10', profile: { minTxMs: 100, minRxMs: 100, multiplier: 3 } }]);
    expect(plan.problems).toEqual([
      'bgp.peers[192.0.2.3].bfdProfile: no profile "slow" under bfd.profiles (known: fast)',
      'bgp.peers[192.0.2.4]: BFD is single-hop (RFC 5881) but the peer is multihop (multihopTtl 4)',
      'bgp.peers[2001:db8::1]: no local address towards the peer, BFD session not started',
    ]);
  });

  const ns = new NetnsSet();
  afterAll(() => ns.destroy());

  it('finds the local address towards a directly connected peer (ip route get)', async () => {
    const a = await ns.create('kbca');
    const b = await ns.create('kbcb');
    await ns.link(a, b, { aAddrs: ['198.51.100.97/29', '2001:db8:bfd2::1/64'], bAddrs: ['198.51.100.98/29'] });
    expect(await localAddressTowards('198.51.100.98', { netns: a })).toBe('198.51.100.97');
    expect(await localAddressTowards('2001:db8:bfd2::2', { netns: a })).toBe('2001:db8:bfd2::1');
    expect(await localAddressTowards('203.0.113.1', { netns: a })).toBeUndefined();
  });
});
