// IpBatch (ip-batch.ts): a batch's lines made while written. Pure: no kernel.
import { describe, expect, test } from '@jest/globals';
import { IpBatch } from '../../src/dataplane/ip-batch.js';
import { diffKernel } from '../../src/dataplane/diff.js';
import { planKernel } from '../../src/dataplane/plan.js';
import { createDriver } from '../../src/dataplane/drivers/index.js';
import { emptyKernelState } from '../../src/dataplane/state.js';
import { desiredState, testConfig } from './fixtures.js';

function recipeBatch(): { batch: IpBatch; writes: () => number } {
  const batch = new IpBatch();
  let writes = 0;
  batch.push('link line', undefined);
  for (const vip of ['a', 'b', 'c']) {
    batch.recipe({
      vip,
      count: 2,
      write(out) {
        writes += 1;
        out.push(`${vip} 1`, `${vip} 2`);
      },
    });
  }
  batch.push('rule line');
  return { batch, writes: () => writes };
}

describe('IpBatch', () => {
  test('size counts recipes without making them; lines and vips line up', () => {
    const { batch, writes } = recipeBatch();
    expect(batch.size).toBe(8);
    expect(writes()).toBe(0);
    expect(batch.lines).toEqual(['link line', 'a 1', 'a 2', 'b 1', 'b 2', 'c 1', 'c 2', 'rule line']);
    expect(batch.vips).toEqual([undefined, 'a', 'a', 'b', 'b', 'c', 'c', undefined]);
  });

  test('chunks keep a VIP whole, number their first line, and cover every line once', () => {
    const { batch } = recipeBatch();
    const chunks = [...batch.chunks(2)];
    expect(chunks.map((c) => [c.first, c.lines.length])).toEqual([
      [0, 3],
      [3, 2],
      [5, 2],
      [7, 1],
    ]);
    expect(chunks.flatMap((c) => c.lines)).toEqual(batch.lines);
    expect(chunks.flatMap((c) => c.vips)).toEqual(batch.vips);
  });

  test('a recipe that makes another number of lines than it counted is an error, not a misnumbered batch', () => {
    const batch = new IpBatch();
    batch.recipe({ vip: 'x', count: 2, write: (out) => void out.push('only one') });
    expect(() => [...batch.chunks(10)]).toThrow(/1 lines made, 2 counted/);
  });

  test('pick finds failed lines by number in one pass', () => {
    const { batch } = recipeBatch();
    expect(batch.pick([1, 4, 8, 99])).toEqual(
      new Map([
        [1, { line: 'link line', vip: undefined }],
        [4, { line: 'b 1', vip: 'b' }],
        [8, { line: 'rule line', vip: undefined }],
      ]),
    );
  });

  test('a first programming of 200 VIPs x 256 buckets: chunks make every route line once', () => {
    const cfg = testConfig();
    const driver = createDriver('vxlan-lwt', cfg.encapsulation, () => Promise.resolve(undefined));
    const vips = Array.from({ length: 200 }, (_, i) => ({ vip: `10.1.${i >> 8}.${i & 255}`, backends: [`192.0.2.${(i % 50) + 1}`, `192.0.2.${(i % 50) + 101}`] }));
    const desired = desiredState({ bucketCount: 256, vips });
    const params = { tableBase: cfg.dataplane.tableBase, rulePriority: cfg.dataplane.rulePriority, pinEstablishedFlows: true };
    const plan = planKernel(desired, driver, params, undefined, emptyKernelState());
    const changes = diffKernel(emptyKernelState(), plan.state, plan.hash, plan.held);
    const v4 = changes.ipBatches[0]!;
    const routeLines = [...v4.chunks(1000)].flatMap((c) => c.lines).filter((l) => l.startsWith('route replace'));
    expect(routeLines).toHaveLength(200 * 256);
    expect(new Set(routeLines).size).toBe(200 * 256);
  });
});
