// `kst status`'s BGP table, like `show bgp summary`: exact rendering of the detailed rows,
// the short table for agents that send no details, and the details kept for --json.
import { describe, expect, it } from '@jest/globals';
import { emptyStatusReport, parseStatusReport } from '../../src/observe/index.js';
import { renderBgpPeers } from '../../src/cli/bgp-peers.js';
import { renderStatus } from '../../src/cli/commands/status.js';

const NOW = new Date('2026-11-23T03:00:00.000Z');

const body = {
  ...emptyStatusReport('tunnel-1'),
  bgpPeers: [
    { address: '192.0.2.1', asn: 65000, state: 'established', uptimeSeconds: 93784, adminDown: false, prefixesReceived: 5, prefixesAccepted: 2, prefixesAdvertised: 120, bfdState: 'Up' },
    {
      address: '2001:db8:1::1', asn: 65000, state: 'idle', adminDown: true, downtimeSeconds: 312, prefixesReceived: 0, prefixesAccepted: 0, prefixesAdvertised: 0,
      bfdState: 'Down', lastError: 'administratively down: BFD session down', lastErrorAt: '2026-11-23T02:54:48.000Z',
    },
    { address: '192.0.2.9', asn: 65001, state: 'active', adminDown: false, downtimeSeconds: 7, lastError: 'NOTIFICATION sent to the peer (e.g. hold timer expired)', lastErrorAt: '2026-11-23T02:59:53.000Z' },
  ],
};

describe('kst status BGP peers', () => {
  it('renders state, up/down, prefix counts, BFD and last error in aligned columns', () => {
    const report = parseStatusReport(body);
    expect(renderBgpPeers(report.bgpPeers, NOW).join('\n')).toBe([
      '  PEER           ASN    STATE         UP/DOWN  RCVD  ACCEPTED  SENT  BFD   LAST ERROR',
      '  192.0.2.1      65000  established   1d2h3m   5     2         120   Up    -',
      '  2001:db8:1::1  65000  idle (admin)  5m12s    0     0         0     Down  administratively down: BFD session down (5m12s ago)',
      '  192.0.2.9      65001  active        7s       -     -         -     -     NOTIFICATION sent to the peer (e.g. hold timer expired) (7s ago)',
    ].join('\n'));
    expect(renderStatus(report, NOW)).toContain('BGP peers (3)\n  PEER           ASN    STATE         UP/DOWN');
  });

  it('keeps the details for --json and leaves absent ones out', () => {
    const report = parseStatusReport(body);
    expect(JSON.parse(JSON.stringify(report))).toEqual(body);
    expect(Object.keys(report.bgpPeers[2]!)).not.toContain('prefixesReceived');
  });

  it('prints the short table for an agent that sends no details', () => {
    const old = { ...emptyStatusReport(), bgpPeers: [{ address: '192.0.2.1', asn: 65000, state: 'established', uptimeSeconds: 65 }] };
    expect(renderBgpPeers(parseStatusReport(old).bgpPeers, NOW)).toEqual([
      '  PEER       ASN    STATE        UPTIME',
      '  192.0.2.1  65000  established  1m5s',
    ]);
    expect(renderBgpPeers([], NOW)).toEqual(['  (none)']);
  });
});
