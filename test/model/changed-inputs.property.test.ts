// replaceAll's diff (src/model/changed-inputs.ts) is a shortcut: it compares snapshot lists
// from both ends by identity instead of building a Set of every object. These properties
// check that the shortcut is exact for any two lists, not only for the sorted, identity-
// preserving snapshots the agent hands it, and that a model fed snapshots through it
// equals a fresh computation.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { changedInputs } from '../../src/model/changed-inputs.js';
import { computeDesiredState, IncrementalModel, type ClusterSnapshot, type EndpointSliceInput, type ServiceInput } from '../../src/model/index.js';
import { cluster, ep, settings, slice, tunnelService } from './helpers.js';

type Item = { readonly id: number };

/** One edit of a list: a value replaced, inserted, removed, moved, or the list rebuilt. */
const edit = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('move' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant('copy-all' as const) }),
);
type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never;

function apply(list: Item[], e: Edit, fresh: () => Item): Item[] {
  const out = list.slice();
  const at = out.length === 0 ? 0 : 'at' in e ? e.at % out.length : 0;
  if (e.op === 'replace' && out.length > 0) out[at] = fresh();
  else if (e.op === 'insert') out.splice('at' in e ? e.at % (out.length + 1) : 0, 0, fresh());
  else if (e.op === 'remove' && out.length > 0) out.splice(at, 1);
  else if (e.op === 'move' && out.length > 0) out.splice(e.to % out.length, 0, ...out.splice(at, 1));
  else if (e.op === 'copy-all') return out.map(() => fresh());
  return out;
}

describe('changedInputs', () => {
  test('added and removed are exactly the set differences, for any two lists of distinct objects', () => {
    fc.assert(
      fc.property(fc.nat({ max: 40 }), fc.array(edit, { maxLength: 6 }), (n, edits) => {
        let id = 0;
        const fresh = () => ({ id: id++ });
        const before = Array.from({ length: n }, fresh);
        const after = edits.reduce((l, e) => apply(l, e, fresh), before);
        const { added, removed } = changedInputs(before, after);
        const b = new Set(before);
        const a = new Set(after);
        expect(new Set(added)).toEqual(new Set(after.filter((x) => !b.has(x))));
        expect(new Set(removed)).toEqual(new Set(before.filter((x) => !a.has(x))));
        expect(added.length).toBe(new Set(added).size);
        expect(removed.length).toBe(new Set(removed).size);
      }),
      { numRuns: 2000 },
    );
  });

  test('the same list, an unchanged copy, or no previous list', () => {
    const xs = [{ id: 1 }, { id: 2 }];
    expect(changedInputs(xs, xs)).toEqual({ added: [], removed: [] });
    expect(changedInputs(xs, xs.slice())).toEqual({ added: [], removed: [] });
    expect(changedInputs(undefined, xs)).toEqual({ added: xs, removed: [] });
  });
});

describe('IncrementalModel.replaceAll over snapshot sequences', () => {
  test('after any sequence of snapshots (sorted as kube/snapshot.ts builds them, or not) it equals a fresh computation', () => {
    const services = Array.from({ length: 12 }, (_, i) => tunnelService(`s${i}`, `203.0.113.${i + 1}`));
    const slices = services.map((s, i) => slice(s.name, Array.from({ length: (i % 4) + 1 }, (_, j) => ep(`198.51.100.${(i * 4 + j) % 250}`, j % 2 ? 'worker-1' : 'worker-2'))));
    const step = fc.record({
      svc: fc.nat({ max: 11 }),
      op: fc.constantFrom('flip', 'drop-slice', 'add-slice', 'drop-service', 'add-service', 'annotate', 'shuffle', 'same'),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), (steps) => {
        const model = new IncrementalModel(settings(), 'tunnel-1');
        let svcs = new Map<string, ServiceInput>(services.map((s) => [s.name, s]));
        let sls = new Map<string, EndpointSliceInput>(slices.map((s) => [s.name, s]));
        let shuffled = false;
        const snapshot = (): ClusterSnapshot => {
          const order = <T>(m: Map<string, T>) => {
            const vals = [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, v]) => v);
            return shuffled ? vals.reverse() : vals;
          };
          return { services: order(svcs), endpointSlices: order(sls), nodes: cluster, localPods: [] };
        };
        let snap = snapshot();
        model.replaceAll(snap);
        for (const { svc, op } of steps) {
          const s = services[svc]!;
          const sl = slices[svc]!;
          const have = sls.get(sl.name);
          if (op === 'flip' && have) sls.set(sl.name, { ...have, endpoints: have.endpoints.map((e, j) => (j === 0 ? { ...e, ready: !e.ready, terminating: e.ready } : e)) });
          else if (op === 'drop-slice') sls.delete(sl.name);
          else if (op === 'add-slice') sls.set(sl.name, { ...sl });
          else if (op === 'drop-service') svcs.delete(s.name);
          else if (op === 'add-service') svcs.set(s.name, { ...s });
          else if (op === 'annotate' && svcs.has(s.name)) svcs.set(s.name, { ...svcs.get(s.name)!, annotations: { ...svcs.get(s.name)!.annotations, note: String(svc) } });
          else if (op === 'shuffle') shuffled = !shuffled;
          svcs = new Map(svcs);
          sls = new Map(sls);
          snap = op === 'same' ? snap : snapshot();
          expect(model.replaceAll(snap).desiredState()).toEqual(computeDesiredState(settings(), snap, 'tunnel-1'));
        }
      }),
      { numRuns: 60 },
    );
  });
});
