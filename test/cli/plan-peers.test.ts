// `kst plan --node X` shows exactly which peers node X dials, and with what: per-rack peers
// by nodeSelector, a per-peer local AS, per-node overrides from Node annotations, and where
// each password comes from (never a value: the plan has none).
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { captureConsole } from '../support/console.js';
import type { DesiredState } from '../../src/model/index.js';

const out = captureConsole();
let dir: string;

const config = `
pools:
  - {name: public, cidrs: [203.0.113.0/25]}
bgp:
  asn: 64512
  peers:
    - {name: tor-a, address: 192.0.2.1, asn: 65001, nodeSelector: rack=a, localAsn: 64601, passwordSecretRef: {name: bgp-auth, key: tor-a}}
    - {name: tor-a6, address: "2001:db8:a::1", asn: 65001, nodeSelector: rack=a, localAsn: 64601}
    - {name: tor-b, address: 192.0.2.5, asn: 65002, nodeSelector: rack=b, sourceAddress: 192.0.2.6, passwordFile: /etc/kst/tor-b}
    - {name: rr, address: 198.51.100.1, asn: 64512, multihopTtl: 4}
`;

const node = (name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) => `---
apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: ${JSON.stringify(labels)}
  annotations: ${JSON.stringify(annotations)}
  creationTimestamp: "2026-01-01T00:00:00Z"
status:
  addresses: [{type: InternalIP, address: 192.0.2.${name.length}}]
  conditions: [{type: Ready, status: "True"}]
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kst-h6-plan-'));
  writeFileSync(join(dir, 'config.yaml'), config);
  writeFileSync(
    join(dir, 'nodes.yaml'),
    node('tunnel-a1', { node: 'tunnel', rack: 'a' }) +
      node('tunnel-b1', { node: 'tunnel', rack: 'b' }, { 'cmd.nu/bgp-asn': '64777', 'cmd.nu/bgp-router-id': '192.0.2.77', 'cmd.nu/bgp-source-addresses': '192.0.2.66, 2001:db8:b::66' }) +
      node('tunnel-c1', { node: 'tunnel', rack: 'c' }, { 'cmd.nu/bgp-asn': 'sixty-four' }),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function plan(nodeName: string, json = false): Promise<string> {
  out.length = 0;
  expect(await main(['plan', '--config', join(dir, 'config.yaml'), '--objects', join(dir, 'nodes.yaml'), '--node', nodeName, ...(json ? ['--json'] : [])])).toBe(0);
  return out.join('\n');
}

test('a rack-a node dials its own ToR (both families) and the route reflector, with the rack\'s local AS', async () => {
  const text = await plan('tunnel-a1');
  expect(text).toContain('BGP: AS 64512 (from bgp.asn), router id (the node\'s IPv4 address towards its first peer)');
  expect(text).toContain('Peers this node dials (3):');
  expect(text).toMatch(/tor-a +192\.0\.2\.1 +65001 +64601 +\(kernel\) +90\/30s +- +secret bgp-auth\/tor-a +rack=a/);
  expect(text).toMatch(/rr +198\.51\.100\.1 +64512 +64512 +\(kernel\) +90\/30s +- +- +\(every node\)/);
  expect(text).toMatch(/tor-a6 +2001:db8:a::1 +65001 +64601/);
  expect(text).not.toContain('tor-b');
  const state = JSON.parse(await plan('tunnel-a1', true)) as DesiredState;
  expect(state.bgp?.peers.map((p) => p.name)).toEqual(['tor-a', 'rr', 'tor-a6']);
});

test('a rack-b node: the Node annotations override AS, router id and source addresses', async () => {
  const text = await plan('tunnel-b1');
  expect(text).toContain('BGP: AS 64777 (from node annotation), router id 192.0.2.77 (from node annotation)');
  expect(text).toMatch(/tor-b +192\.0\.2\.5 +65002 +64777 +192\.0\.2\.66 +90\/30s +- +file \/etc\/kst\/tor-b +rack=b/);
  expect(text).toMatch(/rr +198\.51\.100\.1 +64512 +64777 +192\.0\.2\.66/);
  expect(text).not.toContain('tor-a');
});

test('an invalid node annotation: no session at all, and a problem naming the annotation', async () => {
  const text = await plan('tunnel-c1');
  expect(text).toContain('Peers this node dials (0):');
  expect(text).toMatch(/Node tunnel-c1: .*cmd\.nu\/bgp-asn.*"sixty-four" is not an AS number.*\[InvalidBgpNodeAnnotation\]/);
});

test('a plain password in the configuration is refused, pointing to the two alternatives', async () => {
  writeFileSync(join(dir, 'bad.yaml'), 'bgp:\n  peers:\n    - {address: 192.0.2.1, asn: 65001, password: hunter2}\n');
  out.length = 0;
  expect(await main(['plan', '--config', join(dir, 'bad.yaml'), '--objects', join(dir, 'nodes.yaml'), '--node', 'tunnel-a1'])).toBe(1);
  const text = out.join('\n');
  expect(text).toMatch(/bgp\.peers\[0\]\.password: .*passwordSecretRef.*passwordFile/);
  expect(text).not.toContain('hunter2');
});
