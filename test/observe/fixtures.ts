// A status report with every kind of row, shared by the server, rendering and CLI tests.
import type { StatusReport } from '../../src/observe/index.js';

export const NOW = new Date('2026-11-23T03:00:00.000Z');

export const sampleReport: StatusReport = {
  node: 'tunnel-1',
  generatedAt: '2026-11-23T03:00:00.000Z',
  flowHash: { backend: 'nftables', reason: 'auto: nftables can create an inet table on this node' },
  vips: [
    {
      vip: '203.0.113.10',
      service: 'shop/web',
      pool: 'public',
      endpoints: ['198.51.100.11', '198.51.100.12', '198.51.100.13'],
      bucketsPerEndpoint: { '198.51.100.11': 86, '198.51.100.12': 85, '198.51.100.13': 85 },
      announced: true,
    },
    {
      vip: '2001:db8:10::10',
      service: 'shop/web',
      pool: 'public-v6',
      endpoints: ['2001:db8:20::11'],
      bucketsPerEndpoint: { '2001:db8:20::11': 256 },
      announced: true,
    },
    {
      vip: '203.0.113.20',
      service: 'dns/resolver',
      endpoints: [],
      bucketsPerEndpoint: {},
      announced: false,
      reason: 'no ready endpoints',
    },
  ],
  bgpPeers: [
    { address: '192.0.2.1', asn: 64512, state: 'established', uptimeSeconds: 93784, adminDown: false, prefixesReceived: 5, prefixesAccepted: 2, prefixesAdvertised: 3, bfdState: 'Up' },
    {
      address: '192.0.2.2',
      asn: 64512,
      state: 'active',
      adminDown: false,
      downtimeSeconds: 47,
      prefixesReceived: 0,
      prefixesAccepted: 0,
      prefixesAdvertised: 0,
      bfdState: 'Down',
      lastError: 'NOTIFICATION sent to the peer (e.g. hold timer expired)',
      lastErrorAt: '2026-11-23T02:59:13.000Z',
    },
  ],
  bfdSessions: [
    {
      peer: '192.0.2.1',
      state: 'Up',
      localDiag: 'none',
      remoteDiag: 'none',
      uptimeSeconds: 3725,
      txIntervalMs: 300,
      rxIntervalMs: 300,
      detectTimeMs: 900,
      counters: { txPackets: 12000, rxPackets: 11990, stateChanges: 1 },
    },
    {
      peer: '192.0.2.2',
      state: 'Down',
      localDiag: 'control-detection-time-expired',
      remoteDiag: 'none',
      txIntervalMs: 1000,
      rxIntervalMs: 1000,
      detectTimeMs: 3000,
      counters: { txPackets: 40, rxPackets: 12, stateChanges: 2, dropped: { 'bad-ttl': 3, 'unknown-discriminator': 0 } },
    },
  ],
  reconcile: [
    { area: 'dataplane', lastResult: 'ok', lastRunAt: '2026-11-23T02:59:58.000Z', durationMs: 35.4 },
    { area: 'bgp', lastResult: 'error', lastError: 'gobgpd: AddPath 203.0.113.10/32:\n  connection refused', lastRunAt: '2026-11-23T02:58:55.000Z', durationMs: 2 },
  ],
};
