// What the watcher's feeds keep of each object (SnapshotBuilder.ingest): identity and the
// converted value only, and snapshots built from those equal snapshots built from the
// objects themselves.
import { describe, expect, test } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { SnapshotBuilder } from '../../src/kube/snapshot.js';
import { endpointSlice, node, pod, service } from './fixtures.js';

const objects = () => ({
  services: [service('web', { vip: '203.0.113.10' }), service('api', { vip: '203.0.113.11' })] as KubernetesObject[],
  endpointSlices: [endpointSlice('web-1', 'web', ['198.51.100.1', '198.51.100.2']), endpointSlice('api-1', 'api', ['198.51.100.3'])] as KubernetesObject[],
  nodes: [node('tunnel-1', { labels: { node: 'tunnel' } }), node('worker-1')] as KubernetesObject[],
  localPods: [pod('p1', 'worker-1', '198.51.100.1')] as KubernetesObject[],
});

describe('SnapshotBuilder.ingest', () => {
  test('a snapshot from ingested objects equals one from the objects', () => {
    const raw = objects();
    const builder = new SnapshotBuilder();
    const ingested = {
      services: raw.services.map((o) => builder.ingest('Service', o)),
      endpointSlices: raw.endpointSlices.map((o) => builder.ingest('EndpointSlice', o)),
      nodes: raw.nodes.map((o) => builder.ingest('Node', o)),
      localPods: raw.localPods.map((o) => builder.ingest('Pod', o)),
    };
    expect(builder.build(ingested)).toEqual(new SnapshotBuilder().build(raw));
  });

  test('keeps the identity and resourceVersion, not the object', () => {
    const slice = { ...endpointSlice('web-1', 'web', ['198.51.100.1']), metadata: { name: 'web-1', namespace: 'default', resourceVersion: '42', uid: 'u1' } } as KubernetesObject;
    const kept = new SnapshotBuilder().ingest('EndpointSlice', slice);
    expect(kept.metadata).toEqual({ name: 'web-1', namespace: 'default', resourceVersion: '42', uid: 'u1' });
    expect(JSON.stringify(kept)).not.toContain('198.51.100.1'); // the endpoints live on in converted form only
    expect(Object.keys(kept)).not.toContain('endpoints');
  });
});

describe('EndpointSlice conversion shares endpoints', () => {
  test('the same pod in two slices is one endpoint object; other conditions or another pod are not', () => {
    const withPod = (name: string, ready: boolean) => {
      const s = endpointSlice(name, name, ['198.51.100.7', '198.51.100.8'], { ready }) as unknown as KubernetesObject & { endpoints: Record<string, unknown>[] };
      s.endpoints.forEach((e, i) => (e.targetRef = { kind: 'Pod', namespace: 'default', name: `pod-${i}`, uid: `uid-${i}` }));
      return s;
    };
    const b = new SnapshotBuilder();
    const snap = b.build({ services: [], endpointSlices: [withPod('a', true), withPod('b', true), withPod('c', false)], nodes: [], localPods: [] });
    const [a, bb, c] = snap.endpointSlices;
    expect(a!.endpoints[0]).toBe(bb!.endpoints[0]);
    expect(a!.endpoints[1]).toBe(bb!.endpoints[1]);
    expect(a!.endpoints[0]).not.toBe(a!.endpoints[1]);
    expect(c!.endpoints[0]).not.toBe(a!.endpoints[0]);
    expect(c!.endpoints[0]).toEqual({ ...a!.endpoints[0], ready: false, serving: false });
  });
});
