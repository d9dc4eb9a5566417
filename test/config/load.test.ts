import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, type ConfigIssue } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kst-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const f = join(dir, `c${++n}.yaml`);
  writeFileSync(f, text);
  return f;
}

function issues(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const lines = (is: ConfigIssue[]) => is.map((i) => `${i.path}: ${i.message}`);

describe('good files', () => {
  test('deploy/examples/config.yaml loads with its values', () => {
    const c = loadConfig({ file: 'deploy/examples/config.yaml' });
    expect(c.encapsulation).toEqual({ mode: 'vxlan-lwt', vni: 4242, vxlanPort: 4789, mplsLabel: 100 });
    expect(c.hashSeed).toBe(0x4b535431);
    expect(c.pools.map((p) => p.name)).toEqual(['public', 'auto']);
    expect(c.bgp.peers.map((p) => [p.address, p.bfdProfile])).toEqual([
      ['192.0.2.1', 'fast'],
      ['192.0.2.5', 'fast'],
    ]);
    expect(c.bfd.profiles.fast).toEqual({ minTxMs: 100, minRxMs: 100, multiplier: 3 });
  });

  test('an empty file is all defaults', () => {
    const c = loadConfig({ file: file('') });
    expect(c.buckets).toBe(256);
    expect(c.annotationKey).toBe('cmd.nu/tunnel');
    expect(c.nodeName).toBeUndefined();
  });

  test('nodeName: file, then NODE_NAME, then the hostname', () => {
    expect(loadConfig({ file: file('nodeName: a'), env: { NODE_NAME: 'b' }, resolveNodeName: true }).nodeName).toBe('a');
    expect(loadConfig({ file: file(''), env: { NODE_NAME: 'b' }, resolveNodeName: true }).nodeName).toBe('b');
    expect(loadConfig({ file: file(''), env: {}, resolveNodeName: true }).nodeName).toBeTruthy();
  });
});

describe('overrides: file < environment < --set', () => {
  test('environment variables, typed by the schema', () => {
    const c = loadConfig({
      file: file('logLevel: warn\nbgp: {asn: 64600}'),
      env: { KST_LOG_LEVEL: 'debug', KST_BGP__ASN: '64513', KST_ENCAPSULATION__MODE: 'mpls', KST_ANNOTATION_KEY: '123', KST_POOLS: '[{name: p, cidrs: [203.0.113.0/24]}]', OTHER: 'x' },
    });
    expect(c.logLevel).toBe('debug');
    expect(c.bgp.asn).toBe(64513);
    expect(c.encapsulation.mode).toBe('mpls');
    expect(c.annotationKey).toBe('123'); // a string field keeps the text
    expect(c.pools[0]).toMatchObject({ name: 'p', cidrs: ['203.0.113.0/24'], autoAssign: false });
  });

  test('other commands\' and the tests\' KST_* variables are not configuration', () => {
    expect(loadConfig({ env: { KST_LAB_PREFIX: 'x-', KST_IN_UML: '1', KST_API_ADDRESS: '127.0.0.1:1', KST_TEST_ANYTHING: 'y' } }).buckets).toBe(256);
  });

  test('KST_CONFIG names the file', () => {
    expect(loadConfig({ env: { KST_CONFIG: file('buckets: 64') } }).buckets).toBe(64);
  });

  test('--set wins over the environment, and reaches into lists and maps', () => {
    const c = loadConfig({
      file: 'deploy/examples/config.yaml',
      env: { KST_BUCKETS: '128' },
      set: ['buckets=512', 'pools[1].autoAssign=false', 'bfd.profiles.fast.minTxMs=50', 'bgp.peers.0.asn=65000', 'tunnelNodeSelector=role=ingress'],
    });
    expect(c.buckets).toBe(512);
    expect(c.pools[1]!.autoAssign).toBe(false);
    expect(c.bfd.profiles.fast!.minTxMs).toBe(50);
    expect(c.bgp.peers[0]!.asn).toBe(65000);
    expect(c.tunnelNodeSelector).toBe('role=ingress');
  });

  test('unknown variables and paths are errors', () => {
    expect(lines(issues(() => loadConfig({ env: { KST_BUCKET: '1' }, set: ['bgp.as=1', 'nonsense'] })))).toEqual([
      ': environment variable KST_BUCKET is not a configuration field (e.g. KST_LOG_LEVEL, KST_BGP__ASN)',
      'bgp.as: --set: no such configuration field',
      ': --set "nonsense": expected path=value',
    ]);
  });
});

describe('bad files: every problem, with path and value', () => {
  test.each([
    ['unknown top-level field', 'bucket: 64\n', ['bucket: unknown field; did you mean "buckets"?']],
    ['unknown nested field', 'bgp:\n  peer: []\n', ['bgp.peer: unknown field; did you mean "peers"?']],
    ['wrong type', 'buckets: many\n', ['buckets: "many": expected number, received string']],
    ['out of range', 'buckets: 0\n', ['buckets: 0: Too small: expected number to be >=1']],
    ['bad enum', 'encapsulation: {mode: ipip}\n', ['encapsulation.mode: "ipip": Invalid option']],
    ['missing required', 'bgp: {peers: [{address: 192.0.2.1}]}\n', ['bgp.peers[0].asn: required field is missing']],
    ['bad community', 'pools: [{name: p, cidrs: [203.0.113.0/24], communities: ["64512"]}]\n', ['pools[0].communities[0]: "64512": ASN:value']],
    ['community out of range', 'pools: [{name: p, cidrs: [203.0.113.0/24], communities: ["70000:1"]}]\n', ['pools[0].communities[0]: "70000:1": each half of a community is 0..65535']],
    ['host bits', 'pools: [{name: p, cidrs: [203.0.113.5/24]}]\n', ['pools[0].cidrs[0]: "203.0.113.5/24": host bits set; did you mean 203.0.113.0/24?']],
    ['not a CIDR', 'pools: [{name: p, cidrs: [203.0.113.0]}]\n', ['pools[0].cidrs[0]: "203.0.113.0": missing "/prefix-length"']],
    ['multicast pool', 'pools: [{name: p, cidrs: ["ff00::/8"]}]\n', ['pools[0].cidrs[0]: "ff00::/8" contains multicast addresses']],
    ['overlap across pools', 'pools: [{name: a, cidrs: [2001:db8::/32]}, {name: b, cidrs: [2001:db8:5::/48]}]\n', ['pools[1].cidrs[0]: "2001:db8:5::/48" overlaps pools[0].cidrs[0] (2001:db8::/32 in pool "a")']],
    ['duplicate pool name', 'pools: [{name: a, cidrs: [203.0.113.0/25]}, {name: a, cidrs: [203.0.113.128/25]}]\n', ['pools[1].name: "a" is already the name of pools[0]']],
    ['bad namespace', 'pools: [{name: a, cidrs: [203.0.113.0/25], namespaces: [Default]}]\n', ['pools[0].namespaces[0]: "Default" is not a namespace name or "*"']],
    ['bad peer address', 'bgp: {peers: [{address: 192.0.2.300, asn: 1}]}\n', ['bgp.peers[0].address: "192.0.2.300" is not an IPv4 or IPv6 address']],
    ['duplicate peer', 'bgp: {peers: [{address: 192.0.2.1, asn: 1}, {address: 192.0.2.1, asn: 2}]}\n', ['bgp.peers[1].address: 192.0.2.1 is already bgp.peers[0]']],
    ['missing BFD profile', 'bgp: {peers: [{address: 192.0.2.1, asn: 1, bfdProfile: fast}]}\n', ['bgp.peers[0].bfdProfile: "fast" is not a profile under bfd.profiles (none defined)']],
    ['keepalive vs hold', 'bgp: {peers: [{address: 192.0.2.1, asn: 1, holdTimeSeconds: 9, keepaliveSeconds: 5}]}\n', ['bgp.peers[0].keepaliveSeconds: 5s is more than a third of holdTimeSeconds (9s)']],
    ['IPv6 router id', 'bgp: {routerId: "2001:db8::1"}\n', ['bgp.routerId: "2001:db8::1" is not an IPv4 address']],
    ['bad selector', 'tunnelNodeSelector: "node in (a)"\n', ['tunnelNodeSelector: "node in (a)": set-based requirement']],
    ['bad listen', 'api: {listen: "9742"}\n', ['api.listen: "9742" is not host:port']],
    ['stale before the watch is restarted', 'kube: {watchInactivitySeconds: 135, staleAfterSeconds: 60}\n', ['kube.staleAfterSeconds: 60s is shorter than kube.watchInactivitySeconds (135s)']],
    ['YAML syntax', 'pools: [\n', [': YAML line']],
    ['duplicate YAML key', 'buckets: 1\nbuckets: 2\n', [': YAML line 2']],
    ['not a mapping', '- a\n- b\n', [': expected a mapping of fields at the top level']],
  ])('%s', (_what, text, expected) => {
    const got = lines(issues(() => loadConfig({ file: file(text) })));
    expect(got).toHaveLength(expected.length);
    expected.forEach((e, i) => expect(got[i]).toContain(e));
  });

  test('schema errors and cross-field errors are reported together', () => {
    const got = lines(issues(() => loadConfig({ file: 'deploy/examples/bad/config.yaml' })));
    expect(got.map((l) => l.split(':')[0])).toEqual([
      'logLevel',
      'encapsulation.mode',
      'buckets',
      'bgp.peer',
      'tunnelNodeSelector',
      'bgp.peers[0].address',
      'bgp.peers[0].bfdProfile',
      'pools[0].cidrs[0]',
      'pools[1].name',
      'pools[2].cidrs[0]',
      'pools[3].cidrs[0]',
    ]);
  });

  test('the error message lists every issue with the file name', () => {
    try {
      loadConfig({ file: file('buckets: 0\nbgp: {asn: 0}\n') });
      throw new Error('expected failure');
    } catch (err) {
      expect((err as Error).message).toMatch(/^invalid configuration \(.*\.yaml\):\n {2}buckets: 0: .*\n {2}bgp\.asn: 0: /);
    }
  });

  test('an unreadable file is an issue, not a crash', () => {
    expect(lines(issues(() => loadConfig({ file: join(dir, 'absent.yaml') })))[0]).toContain('cannot read');
  });
});
