// Per-VIP peers and attributes: pool settings plus the Service's annotations, validated
// as a whole; an invalid value keeps the VIP from being announced, with a Problem.
import { describe, expect, test } from '@jest/globals';
import { computeDesiredState } from '../../src/model/index.js';
import { cluster, ep, settings, slice, tunnelService } from './helpers.js';
import { renderPlan } from '../../src/cli/commands/plan.js';

const peers = [
  { name: 'tor-a', address: '192.0.2.1', asn: 65001, holdTimeSeconds: 9, keepaliveSeconds: 3 },
  { name: 'tor-b', address: '192.0.2.5', asn: 65002, holdTimeSeconds: 9, keepaliveSeconds: 3 },
];
const cfg = (poolPeers?: string[]) =>
  settings({
    bgp: { maintenanceTaint: 'cmd.nu/tunnel-maintenance', peers },
    pools: [{ name: 'public', cidrs: ['203.0.113.0/25'], namespaces: ['*'], autoAssign: false, communities: ['64512:100'], largeCommunities: [], localPref: 120, ...(poolPeers ? { peers: poolPeers } : {}) }],
  });
const state = (annotations: Record<string, string>, poolPeers?: string[]) =>
  computeDesiredState(cfg(poolPeers), { services: [tunnelService('web', '203.0.113.10', { annotations: { 'cmd.nu/tunnel': '203.0.113.10', ...annotations } })], endpointSlices: [slice('web', [ep('198.51.100.130', 'worker-1')])], nodes: cluster, localPods: [] }, 'tunnel-1');

describe('per-VIP peers and attributes', () => {
  test('kst plan shows each announcement\'s peers', () => {
    expect(renderPlan(state({ 'cmd.nu/tunnel-peers': 'tor-b' }))).toMatch(/203\.0\.113\.10\/32 +default\/web +64512:100 +- +120 +192\.0\.2\.5/);
    expect(renderPlan(state({}))).toMatch(/203\.0\.113\.10\/32 +default\/web +64512:100 +- +120 +\(every peer\)/);
  });

  test('pool attributes, no restriction: every peer', () => {
    expect(state({}).announcements[0]).toMatchObject({ communities: ['64512:100'], largeCommunities: [], localPref: 120 });
    expect(state({}).announcements[0]!.peers).toBeUndefined();
  });

  test('the pool restricts peers by name; the Service narrows them and adds attributes', () => {
    const s = state({ 'cmd.nu/tunnel-peers': 'tor-b', 'cmd.nu/tunnel-communities': '65002:7, 64512:100', 'cmd.nu/tunnel-large-communities': '65002:1:2', 'cmd.nu/tunnel-local-pref': '300' }, ['tor-a', '192.0.2.5']);
    expect(s.problems).toEqual([]);
    expect(s.announcements[0]).toMatchObject({ peers: ['192.0.2.5'], communities: ['64512:100', '65002:7'], largeCommunities: ['65002:1:2'], localPref: 300 });
    expect(state({}, ['tor-a']).announcements[0]!.peers).toEqual(['192.0.2.1']);
  });

  test.each([
    [{ 'cmd.nu/tunnel-communities': '65002:70000' }, undefined, 'cmd.nu/tunnel-communities"]: "65002:70000" is not a community'],
    [{ 'cmd.nu/tunnel-large-communities': '1:2' }, undefined, 'is not a large community'],
    [{ 'cmd.nu/tunnel-local-pref': 'high' }, undefined, '"high" is not a LOCAL_PREF'],
    [{ 'cmd.nu/tunnel-peers': 'tor-z' }, undefined, '"tor-z" is not a configured peer (bgp.peers: tor-a, tor-b)'],
    [{ 'cmd.nu/tunnel-peers': 'tor-b' }, ['tor-a'], '192.0.2.5 not among pool "public"\'s peers (192.0.2.1)'],
    [{ 'cmd.nu/tunnel-peers': ' , ' }, undefined, 'is empty'],
  ])('%j (pool peers %j): not announced at all, one Problem', (annotations, poolPeers, text) => {
    const s = state(annotations, poolPeers);
    expect(s.announcements).toEqual([]);
    expect(s.vips[0]!.announceReason).toBe("invalid BGP settings (see the Service's Events)");
    expect(s.problems.map((p) => p.reason)).toEqual(['InvalidBgpAttributes']);
    expect(s.problems[0]!.message).toContain(text);
  });
});
