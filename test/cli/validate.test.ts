// `kst validate` on the shipped examples: the good set is clean (exit 0), the bad set
// reports every planted problem with its object and field (exit 1).
import { expect, test } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { captureConsole } from '../support/console.js';

const out = captureConsole();

const text = () => out.join('\n');

test('deploy/examples is clean', async () => {
  expect(await main(['validate', '--config', 'deploy/examples/config.yaml', '--objects', 'deploy/examples/objects'])).toBe(0);
  expect(text()).toContain('config deploy/examples/config.yaml: ok');
  expect(text()).toMatch(/objects: 14 from 4 file\(s\) \(2 Services, 3 EndpointSlices, 4 Nodes, 5 Pods; 0 of other kinds skipped\): ok/);
});

test('deploy/examples/bad/objects: every problem named with object and field', async () => {
  expect(await main(['validate', '--config', 'deploy/examples/config.yaml', '--objects', 'deploy/examples/bad/objects'])).toBe(1);
  const expected = [
    'deploy/examples/bad/objects/broken.yaml: line 6 column 1: Flow sequence in block collection must be sufficiently indented',
    'Service default/manual: spec.type: "Loadbalancer" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName',
    'EndpointSlice default/host-agent-1: endpoints[1].addresses[0]: "not-an-ip" is not an IP address',
    'EndpointSlice default/orphan: metadata.labels["kubernetes.io/service-name"]: missing',
    'Node worker-1: spec.unschedulable: expected true or false, got "yes"',
    'Pod default/host-agent-w1: spec.hostNetwork: pod default/host-agent-w1 uses the node\'s network namespace',
    'Service default/closed: spec.loadBalancerSourceRanges[0]: "198.51.100.0/33" is not a CIDR',
    'Service default/elsewhere: metadata.annotations["cmd.nu/tunnel"]: 192.0.2.99 is outside every configured pool',
    'Service default/reserved: metadata.annotations["cmd.nu/tunnel"]: 0.0.0.0 is an unspecified address',
    'Service default/reserved: metadata.annotations["cmd.nu/tunnel"]: 127.0.0.1 is a loopback address',
    'Service default/reserved: metadata.annotations["cmd.nu/tunnel"]: 169.254.1.1 is a link-local address',
    'Service default/reserved: metadata.annotations["cmd.nu/tunnel"]: 255.255.255.255 is a broadcast address',
    'Service default/reserved: metadata.annotations["cmd.nu/tunnel"]: ff02::1 is a multicast address',
    'Service default/second: metadata.annotations["cmd.nu/tunnel"]: 203.0.113.20 is already used by Service default/first',
    'Service default/typo: metadata.annotations["cmd.nu/tunnel"]: "203.0.113.300" is not an IPv4 or IPv6 address',
    'Service other/intruder: metadata.annotations["cmd.nu/tunnel"]: 203.0.113.140 is in pool "auto", which does not allow namespace "other"',
    'Service other/unplaced: spec.loadBalancerClass "cmd.nu/kube-service-tunnel": no autoAssign pool with IPv4 addresses allows namespace "other" [AllocationFailed]',
  ];
  const problemLines = out.slice(0, out.indexOf(''));
  expect(problemLines).toHaveLength(expected.length);
  expected.forEach((e, i) => expect(problemLines[i]).toContain(e));
  expect(text()).toContain('17 problem(s)');
  // The Service without selector is valid: nothing reported about it.
  expect(text()).not.toContain('default/manual: metadata');
});

test('deploy/examples/bad/config.yaml: every mistake, exit 1', async () => {
  expect(await main(['validate', '--config', 'deploy/examples/bad/config.yaml'])).toBe(1);
  for (const e of [
    'logLevel: "verbose"',
    'encapsulation.mode: "ipip"',
    'buckets: 0',
    'bgp.peer: unknown field; did you mean "peers"?',
    'tunnelNodeSelector: "node in (tunnel)": set-based requirement',
    'bgp.peers[0].address: "192.0.2.300" is not an IPv4 or IPv6 address',
    'bgp.peers[0].bfdProfile: "slow" is not a profile under bfd.profiles (defined: fast)',
    'pools[0].cidrs[0]: "203.0.113.5/24": host bits set',
    'pools[1].name: "public" is already the name of pools[0]',
    'pools[2].cidrs[0]: "2001:db8:5::/48" overlaps pools[1].cidrs[0]',
    'pools[3].cidrs[0]: "127.0.0.0/8" contains loopback addresses',
  ]) {
    expect(text()).toContain(`deploy/examples/bad/config.yaml: ${e}`);
  }
  expect(text()).toContain('11 problem(s)');
});

test('usage errors exit 2; --help exits 0', async () => {
  expect(await main(['validate'])).toBe(2);
  expect(await main(['validate', '--config', 'x', '--bogus'])).toBe(2);
  expect(await main(['validate', '--help'])).toBe(0);
  expect(text()).toContain('usage: kst validate --config FILE');
});
