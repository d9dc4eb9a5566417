// The /status wire format and its rendering by `kst status`. The tables are compared with a
// golden file; `UPDATE_GOLDEN=1 npm test -- test/observe` rewrites it on purpose.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { emptyStatusReport, parseStatusReport } from '../../src/observe/index.js';
import { duration, renderStatus, statusUrl } from '../../src/cli/commands/status.js';
import { NOW, sampleReport } from './fixtures.js';

const GOLDEN = 'test/observe/testdata/status.golden';

describe('renderStatus', () => {
  it('prints VIPs, BGP peers, BFD sessions and reconcile runs as the golden tables', () => {
    const text = renderStatus(sampleReport, NOW);
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('says (none) for empty sections and has no trailing spaces', () => {
    const text = renderStatus(emptyStatusReport('serving-3'), NOW);
    expect(text.split('\n')[0]).toBe('node serving-3');
    expect(text.match(/\(none\)/g)).toHaveLength(4);
    for (const line of text.split('\n')) expect(line).toBe(line.trimEnd());
  });

  it('prints the Kubernetes feeds, a stale one marked, and whether this agent leads', () => {
    const report = {
      ...sampleReport,
      kube: {
        leader: false,
        leaseHolder: 'tunnel-2-abcde',
        feeds: [
          { feed: 'services', lastEventAgeSeconds: 12.4, stale: false, failing: false, resourceVersion: '4711', lastListAt: new Date(NOW.getTime() - 300_000).toISOString() },
          { feed: 'endpointslices', lastEventAgeSeconds: 200, stale: true, failing: true, resourceVersion: '4700', lastError: 'connect ECONNREFUSED' },
        ],
      },
    };
    const text = renderStatus(parseStatusReport(JSON.parse(JSON.stringify(report))), NOW);
    const lines = text.split('\n');
    const at = lines.indexOf('Kubernetes (this agent does not lead; leader: tunnel-2-abcde)');
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/^ +FEED +LAST EVENT +STATE +RESOURCE VERSION +LAST LIST +ERROR$/);
    expect(lines[at + 2]).toMatch(/^ +services +12s ago +live +4711 +5m0s ago +-$/);
    expect(lines[at + 3]).toMatch(/^ +endpointslices +3m20s ago +STALE +4700 +- +connect ECONNREFUSED$/);
    // Older agents send no kube section: nothing is printed for it.
    expect(renderStatus(sampleReport, NOW)).not.toContain('Kubernetes (');
  });

  it('formats durations compactly', () => {
    expect(duration(undefined)).toBe('-');
    expect(duration(0)).toBe('0s');
    expect(duration(125.9)).toBe('2m5s');
    expect(duration(3725)).toBe('1h2m5s');
    expect(duration(93784)).toBe('1d2h3m');
  });
});

describe('parseStatusReport', () => {
  it('accepts a report as the server sends it (JSON round trip)', () => {
    expect(parseStatusReport(JSON.parse(JSON.stringify(sampleReport)))).toEqual(sampleReport);
  });

  it('names the bad field', () => {
    const bad = JSON.parse(JSON.stringify(sampleReport)) as { bgpPeers: { state: string }[] };
    bad.bgpPeers[1]!.state = 'sleeping';
    expect(() => parseStatusReport(bad)).toThrow(/^status: bgpPeers\[1\]\.state: /);
    expect(() => parseStatusReport({ ...sampleReport, vips: [{ vip: '203.0.113.1' }] })).toThrow(/^status: vips\[0\]\.service: /);
    expect(() => parseStatusReport('hello')).toThrow(/^status: \(top level\): /);
  });

  it('checks the optional BGP details and flow hash like the other fields', () => {
    const peer = sampleReport.bgpPeers[0]!;
    const withPeer = (extra: object): unknown => ({ ...sampleReport, bgpPeers: [{ ...peer, ...extra }] });
    expect(() => parseStatusReport(withPeer({ prefixesReceived: -1 }))).toThrow(/^status: bgpPeers\[0\]\.prefixesReceived: /);
    expect(() => parseStatusReport(withPeer({ prefixesAdvertised: 1.5 }))).toThrow(/^status: bgpPeers\[0\]\.prefixesAdvertised: /);
    expect(() => parseStatusReport(withPeer({ adminDown: 'yes' }))).toThrow(/^status: bgpPeers\[0\]\.adminDown: /);
    expect(() => parseStatusReport(withPeer({ lastError: 42 }))).toThrow(/^status: bgpPeers\[0\]\.lastError: /);
    expect(() => parseStatusReport({ ...sampleReport, flowHash: { backend: 'pf', reason: 'x' } })).toThrow(/^status: flowHash\.backend: /);
    expect(() => parseStatusReport({ ...sampleReport, flowHash: { backend: 'nftables' } })).toThrow(/^status: flowHash\.reason: /);
  });

  it('accepts an older agent\'s report without details or flow hash', () => {
    const { flowHash: _gone, ...old } = sampleReport;
    const report = parseStatusReport({ ...old, bgpPeers: [{ address: '192.0.2.1', asn: 64512, state: 'established', uptimeSeconds: 5 }] });
    expect(report.flowHash).toBeUndefined();
    expect(report.bgpPeers[0]).toEqual({ address: '192.0.2.1', asn: 64512, state: 'established', uptimeSeconds: 5 });
    expect(renderStatus(report, NOW)).not.toContain('flow hash');
  });
});

describe('statusUrl', () => {
  it('asks an agent listening on all addresses on loopback, brackets IPv6', () => {
    expect(statusUrl('127.0.0.1:9742')).toBe('http://127.0.0.1:9742/status');
    expect(statusUrl('0.0.0.0:9742')).toBe('http://127.0.0.1:9742/status');
    expect(statusUrl(':9742')).toBe('http://[::1]:9742/status');
    expect(statusUrl('[2001:db8::1]:80')).toBe('http://[2001:db8::1]:80/status');
    expect(() => statusUrl('localhost')).toThrow(/api.listen: expected HOST:PORT.*"localhost"/);
  });
});
