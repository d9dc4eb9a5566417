// Golden files for what the data plane generates: the nft table and the ip batch scripts
// of every driver. A change in output is a change in behaviour: review the diff, then
// rewrite the goldens on purpose with UPDATE_GOLDEN=1.
import { describe, expect, test } from '@jest/globals';
import { expectGolden } from '../support/golden.js';
import { join } from 'node:path';
import { createDriver, diffKernel, planKernel, renderNftTable } from '../../src/dataplane/index.js';
import { emptyKernelState } from '../../src/dataplane/state.js';
import type { EncapMode } from '../../src/model/types.js';
import type { KernelChanges } from '../../src/dataplane/diff.js';
import { desiredState, planParams, testConfig } from './fixtures.js';

/** The ip batches as run, each under a header naming its command. */
function batches(changes: KernelChanges): string {
  return changes.ipBatches.map((b) => `# ip${b.family === 6 ? ' -6' : ''} -batch${b.afterSuccess ? ' (only after the batches above succeeded)' : ''}\n${b.lines.join('\n')}\n`).join('');
}

const ipLines = (changes: KernelChanges): string[] => changes.ipBatches.flatMap((b) => b.lines);

const dir = join(process.cwd(), 'test', 'dataplane', 'golden');

const golden = (name: string, text: string): void => expectGolden(dir, name, text);

const B = 4;
const vips = [
  { vip: '203.0.113.10', backends: ['192.0.2.11', '192.0.2.12'], buckets: [0, 1, 1, 0], nodes: ['node-a', 'node-b'] },
  { vip: '203.0.113.20', backends: ['192.0.2.13'], sourceRanges: ['198.51.100.0/24', '198.51.100.7/32', '192.0.2.100/32'], nodes: ['node-a'] },
  { vip: '2001:db8:ff::10', backends: ['2001:db8:f::11'], sourceRanges: ['2001:db8:c::/48'], nodes: ['node-a'] },
];

// Without pinning: one table generation (the goldens from before pinning existed).
function plan(mode: EncapMode, pin = false) {
  const config = testConfig({ mode, pin });
  // mpls looks up each local pod's veth; here a fixed answer stands in for `ip route get`.
  const driver = createDriver(mode, config.encapsulation, () => Promise.resolve('veth-pod'));
  const desired = desiredState({ mode, bucketCount: B, node: 'node-a', vips: mode === 'mpls' ? vips.slice(0, 2) : vips });
  return { driver, desired, config };
}

describe('golden output', () => {
  test('nft table', () => {
    const { driver, desired, config } = plan('vxlan-lwt');
    const p = planKernel(desired, driver, planParams(config));
    golden('table.nft', renderNftTable(p.state.nft, p.hash));
  });

  for (const mode of ['vxlan-lwt', 'gre-lwt', 'gre', 'mpls'] as const) {
    test(`ip batch of a full sync into an empty kernel: ${mode}`, async () => {
      const { driver, desired, config } = plan(mode);
      const { endpointsOf } = await import('../../src/dataplane/plan.js');
      await driver.prepare?.(endpointsOf(desired, driver), true);
      const p = planKernel(desired, driver, planParams(config));
      expect(p.problems).toEqual([]);
      const changes = diffKernel(emptyKernelState(), p.state, p.hash);
      golden(`full-${mode}.batch`, batches(changes));
    });
  }

  test('ip batch and nft script of one endpoint change and one new VIP', () => {
    const { driver, config } = plan('vxlan-lwt');
    const before = planKernel(desiredState({ bucketCount: B, vips }), driver, planParams(config));
    const changed = [{ ...vips[0]!, backends: ['192.0.2.11', '192.0.2.14'] }, vips[1]!, vips[2]!, { vip: '203.0.113.30', backends: ['192.0.2.11'] }];
    const after = planKernel(desiredState({ bucketCount: B, vips: changed }), driver, planParams(config), undefined, before.state);
    const changes = diffKernel(before.state, after.state, after.hash);
    golden('change.batch', batches(changes));
    golden('change.nft', changes.nftScript);
    // 2 moved buckets, 4 routes of the new VIP, counter + 2 elements, the new endpoint's
    // nexthop object, and the object of the endpoint no route leads to any more.
    expect(changes.operations).toBe(2 + 4 + 3 + 2);
    expect(ipLines(changes).at(-1)).toMatch(/^nexthop del id /);
  });

  test('vxlan-lwt: the first IPv6 VIP adds the IPv6 gateway neighbour, the last one takes it away, never recreating the link', () => {
    const { driver, config } = plan('vxlan-lwt');
    const v4only = planKernel(desiredState({ bucketCount: B, vips: vips.slice(0, 2) }), driver, planParams(config));
    expect(ipLines(diffKernel(emptyKernelState(), v4only.state, v4only.hash)).filter((l) => l.startsWith('neigh'))).toEqual([
      'neigh replace 169.254.75.83 lladdr 02:6b:73:74:00:02 dev kst-vxlan nud permanent',
    ]);
    const dual = planKernel(desiredState({ bucketCount: B, vips }), driver, planParams(config), undefined, v4only.state);
    const up = diffKernel(v4only.state, dual.state, dual.hash);
    expect(ipLines(up).some((l) => l.startsWith('link'))).toBe(false);
    // In the IPv6 batch, before the nexthop object that goes through it.
    const v6 = up.ipBatches.find((b) => b.family === 6)!.lines;
    expect(v6[0]).toBe('neigh replace fe80::4b53 lladdr 02:6b:73:74:00:02 dev kst-vxlan nud permanent');
    expect(v6[1]).toMatch(/^nexthop replace id \d+ proto 245 via fe80::4b53 dev kst-vxlan encap ip6 id 4242 dst 2001:db8:f::11 csum$/);
    const down = diffKernel(dual.state, planKernel(desiredState({ bucketCount: B, vips: vips.slice(0, 2) }), driver, planParams(config), undefined, dual.state).state, dual.hash);
    expect(ipLines(down).some((l) => l.startsWith('link'))).toBe(false);
    // With the removals, after the IPv6 routes are gone.
    expect(down.ipBatches.at(-1)!.lines).toContain('neigh del fe80::4b53 dev kst-vxlan');
  });

  test('pinning: nft table, and a change written into the other parity then flipped', () => {
    const { driver, config } = plan('vxlan-lwt', true);
    const before = planKernel(desiredState({ bucketCount: B, vips }), driver, planParams(config));
    golden('table-pin.nft', renderNftTable(before.state.nft, before.hash));
    const full = diffKernel(emptyKernelState(), before.state, before.hash);
    expect(ipLines(full).filter((l) => / lookup /.test(l) && l.startsWith('rule add'))).toHaveLength(2 * 2 * B); // both parities, both families
    // A third backend (scale-up): bucket 2 moves away from 192.0.2.12, which still serves.
    const changed = [{ ...vips[0]!, backends: ['192.0.2.11', '192.0.2.12', '192.0.2.14'], buckets: [0, 1, 2, 0] }, vips[1]!, vips[2]!, { vip: '203.0.113.30', backends: ['192.0.2.11'] }];
    const after = planKernel(desiredState({ bucketCount: B, vips: changed }), driver, planParams(config), undefined, before.state);
    const changes = diffKernel(before.state, after.state, after.hash);
    golden('change-pin.batch', batches(changes));
    golden('change-pin.nft', changes.nftScript);
    // The changed VIP: all 4 buckets into parity 1 (old generation kept), flip element; the
    // new VIP: 4 routes in parity 0, counter + 2 elements; the new endpoint's nexthop
    // object. Nothing is deleted: the old generation still leads to 192.0.2.12.
    expect(changes.operations).toBe(4 + 1 + 4 + 3 + 1);
    expect(ipLines(changes).some((l) => / del /.test(l))).toBe(false);
    // Applying the same input again: nothing to do.
    const again = planKernel(desiredState({ bucketCount: B, vips: changed }), driver, planParams(config), undefined, after.state);
    expect(diffKernel(after.state, again.state, again.hash).operations).toBe(0);
  });
});
