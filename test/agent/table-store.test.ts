// Stored bucket tables end to end (issue 7) against the in-repo API server with the real
// client-node: the leader's agent stores tables on the Service, another node reads them
// and computes the same tables, an endpoint change moves the fewest buckets with
// generation + 1, and a non-leader never writes.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Agent } from '../../src/agent/agent.js';
import { BucketTableWriter, planTableWrites, TableWritePlanner } from '../../src/kube/table-writer.js';
import { ClusterWatcher } from '../../src/kube/index.js';
import { LabApiServer, waitFor } from '../../src/lab/index.js';
import { IncrementalModel, computeDesiredState, movedBuckets, parseStoredTables, type BucketTable, type ClusterSnapshot, type DesiredState, type IpAddress } from '../../src/model/index.js';
import { MemoryEventSink, silentLogger } from '../../src/observe/index.js';
import { cluster, ep, settings, slice, tunnelService } from '../model/helpers.js';
import { NODE, endpointSlice, node, service } from '../kube/fixtures.js';

const S = settings();
const KEY = 'cmd.nu/tunnel-tables';
const VIP = '203.0.113.40' as IpAddress;
const B = S.buckets;

/** One node: a watcher feeding an IncrementalModel (and, on the leader, an Agent with a writer). */
class TestNode {
  readonly model: IncrementalModel;
  readonly watcher: ClusterWatcher;
  desired?: DesiredState;
  snapshot?: ClusterSnapshot;
  constructor(server: LabApiServer, name: string, onSnapshot?: (s: ClusterSnapshot) => void) {
    this.model = new IncrementalModel(S, name);
    this.watcher = new ClusterWatcher({
      kubeConfig: server.kubeConfig(),
      nodeName: name,
      debounceMs: 20,
      onChange: (s) => {
        this.snapshot = s;
        if (onSnapshot) onSnapshot(s);
        else this.desired = this.model.replaceAll(s).desiredState();
      },
    });
  }
  table(): BucketTable | undefined {
    return this.desired?.vips.find((v) => v.vip === VIP)?.table;
  }
}

describe('stored bucket tables through the API server', () => {
  let server: LabApiServer;
  const stops: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    server = new LabApiServer();
    await server.start();
    server.apply(node(NODE, { labels: { node: 'tunnel' } }));
    server.apply(service('web', { vip: VIP }));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12', '198.51.100.13']));
  });

  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    await server.stop();
  });

  const storedAnnotation = () => server.find('v1', 'Service', 'web', 'default')?.metadata?.annotations?.[KEY];
  const storedTable = () => {
    const text = storedAnnotation();
    return text === undefined ? undefined : parseStoredTables(text).tables.get(VIP);
  };
  const tablePatches = () => server.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/services/web')).length;

  /** The leader: a real Agent (no data plane) whose converge hands each desired state to the writer. */
  async function startLeader(isLeader: () => boolean): Promise<{ leader: TestNode; writer: BucketTableWriter; events: MemoryEventSink }> {
    const events = new MemoryEventSink();
    const writer = new BucketTableWriter({ kubeConfig: server.kubeConfig(), annotationKey: S.annotationKey, isLeader, roundIntervalMs: 50 });
    writer.start();
    const model = new IncrementalModel(S, 'tunnel-1');
    const agent = new Agent(
      { model, events, logger: silentLogger(), isLeader, writeBucketTables: (d, s) => writer.offer(d, s.services) },
      { withdrawGraceSeconds: 0, unhealthyAfterFailures: 3 },
    );
    const leader: TestNode = new TestNode(server, 'tunnel-1', (s) => {
      agent.onSnapshot(s);
      leader.desired = agent.current();
    });
    await leader.watcher.start();
    stops.push(async () => {
      await leader.watcher.stop();
      await agent.idle();
      await writer.stop();
    });
    return { leader, writer, events };
  }

  async function startFollower(name: string): Promise<TestNode> {
    const follower = new TestNode(server, name);
    await follower.watcher.start();
    stops.push(() => follower.watcher.stop());
    return follower;
  }

  it('the leader stores tables; another node computes identical ones; an endpoint change moves the fewest buckets with generation + 1', async () => {
    const { leader, writer } = await startLeader(() => true);
    const follower = await startFollower('tunnel-2');

    // First table: Maglev (generation 0 in the model), stored as generation 1; then every
    // node, the leader included, reads it back and uses it as is.
    await waitFor(() => storedTable()?.generation === 1, 10000, 20);
    await waitFor(() => leader.table()?.generation === 1 && follower.table()?.generation === 1, 10000, 20);
    const first = follower.table()!;
    expect(leader.table()).toEqual(first);
    expect(first.buckets).toEqual(storedTable()!.buckets);

    // A fourth endpoint: the leader rebalances from the stored table and stores generation 2.
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12', '198.51.100.13', '198.51.100.14']));
    await waitFor(() => storedTable()?.generation === 2, 10000, 20);
    await waitFor(() => follower.table()?.generation === 2 && leader.table()?.generation === 2, 10000, 20);
    const second = follower.table()!;
    expect(leader.table()).toEqual(second);
    expect(second.buckets).toEqual(storedTable()!.buckets);
    expect(movedBuckets(first, second)).toBeLessThanOrEqual(Math.ceil(B / 4));
    expect(movedBuckets(first, second)).toBeGreaterThanOrEqual(Math.floor(B / 4));

    // Settled: the tables match what is stored, so the leader writes nothing more.
    await writer.idle();
    const patches = tablePatches();
    server.apply({ ...node(NODE, { labels: { node: 'tunnel', other: 'change' } }) });
    await waitFor(() => leader.snapshot?.nodes[0]?.labels.other === 'change', 10000, 20);
    await writer.idle();
    expect(tablePatches()).toBe(patches);

    // A restarted node starts from the annotation and computes the same table at once.
    const restarted = await startFollower('tunnel-3');
    await waitFor(() => restarted.table() !== undefined, 10000, 20);
    expect(restarted.table()).toEqual(second);

    // A stale view (the first snapshot, from before generation 2) never overwrites a newer table.
    const stale = new IncrementalModel(S, 'tunnel-9');
    const oldSnapshot: ClusterSnapshot = { ...leader.snapshot!, services: leader.snapshot!.services.map((s) => ({ ...s, annotations: { 'cmd.nu/tunnel': VIP } })) };
    const before = writer.stats().stale;
    writer.offer(stale.replaceAll(oldSnapshot).desiredState(), oldSnapshot.services);
    await writer.idle();
    expect(writer.stats().stale).toBe(before + 1);
    expect(storedTable()!.generation).toBe(2);
  });

  it('a non-leader never writes; the same writer writes once it leads', async () => {
    let leading = false;
    const { writer } = await startLeader(() => leading);
    const follower = await startFollower('tunnel-2');
    await waitFor(() => follower.table() !== undefined, 10000, 20);
    // Endpoint changes while not leading: converges happen, nothing is written.
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12']));
    await waitFor(() => follower.table()?.backends.length === 2, 10000, 20);
    await new Promise((r) => setTimeout(r, 300));
    await writer.idle();
    expect(tablePatches()).toBe(0);
    expect(storedAnnotation()).toBeUndefined();
    expect(writer.stats().rounds).toBe(0);

    leading = true;
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12', '198.51.100.13']));
    await waitFor(() => storedTable()?.generation === 1, 10000, 20);
    await waitFor(() => follower.table()?.generation === 1, 10000, 20);
    expect(follower.table()!.buckets).toEqual(storedTable()!.buckets);
  });

  it('a hand-edited, broken annotation becomes an InvalidStoredTable problem and the leader repairs it', async () => {
    const { leader, events } = await startLeader(() => true);
    await waitFor(() => storedTable()?.generation === 1, 10000, 20);
    const svc = server.find('v1', 'Service', 'web', 'default')!;
    server.apply({ ...svc, metadata: { ...svc.metadata!, annotations: { ...svc.metadata!.annotations, [KEY]: '{"v":1,"tables":{"203.0.113.40":"oops"}}' } } });
    await waitFor(() => events.events.some((e) => e.reason === 'InvalidStoredTable'), 10000, 20);
    expect(events.events.find((e) => e.reason === 'InvalidStoredTable')).toMatchObject({ type: 'Warning', ref: { kind: 'Service', namespace: 'default', name: 'web' }, message: expect.stringContaining(KEY) });
    // Repaired with the computed table, stored as generation 1 again.
    await waitFor(() => storedTable() !== undefined && leader.table()?.generation === 1 && leader.desired?.problems.length === 0, 10000, 20);
    expect(leader.table()!.buckets).toEqual(storedTable()!.buckets);
  });
});

describe('planTableWrites', () => {
  const snap = (svc: ReturnType<typeof tunnelService>, addresses: string[]): ClusterSnapshot => ({
    services: [svc],
    endpointSlices: [slice('web', addresses.map((a) => ep(a, 'worker-1')), { name: 'web-1' })],
    nodes: cluster,
    localPods: [],
  });
  const plan = (svc: ReturnType<typeof tunnelService>, addresses: string[], s = S, nodeName = 'tunnel-1') => planTableWrites(computeDesiredState(s, snap(svc, addresses), nodeName), [svc], s.annotationKey);

  it('writes a missing table, nothing when stored, keeps the entry of a VIP without endpoints, removes it when the Service has no VIP', () => {
    const web = tunnelService('web', VIP);
    const [first] = plan(web, ['198.51.100.1', '198.51.100.2']);
    expect(first).toMatchObject({ namespace: 'default', name: 'web', uid: 'uid-web', basedOn: undefined });
    expect(parseStoredTables(first!.value!).tables.get(VIP)?.generation).toBe(1);
    const stored = tunnelService('web', VIP, { annotations: { 'cmd.nu/tunnel': VIP, [KEY]: first!.value! } });
    expect(plan(stored, ['198.51.100.1', '198.51.100.2'])).toEqual([]);
    // No serving endpoint: the stored entry stays, so returning endpoints start from it.
    expect(plan(stored, [])).toEqual([]);
    // No longer a tunnel Service: the annotation goes.
    const plain = { ...stored, annotations: { [KEY]: first!.value! } };
    expect(plan(plain, ['198.51.100.1'])).toEqual([{ namespace: 'default', name: 'web', uid: 'uid-web', value: null, basedOn: first!.value! }]);
  });

  it('TableWritePlanner (remembers each Service result): round after round the same writes as planTableWrites', () => {
    const vips = ['203.0.113.41', '203.0.113.42', '203.0.113.43'] as IpAddress[];
    let services = vips.map((v, i) => tunnelService(`s${i}`, v));
    const model = new IncrementalModel(S, 'tunnel-1');
    const endpoints = (i: number, extra: string[] = []) => slice(`s${i}`, ['198.51.100.1', '198.51.100.2', ...extra].map((a) => ep(a, 'worker-1')), { name: `s${i}-1` });
    let slices = vips.map((_, i) => endpoints(i));
    const planner = new TableWritePlanner(S.annotationKey);
    const round = () => {
      model.replaceAll({ services, endpointSlices: slices, nodes: cluster, localPods: [] });
      const desired = model.desiredState();
      const writes = planner.plan(desired, services);
      expect(writes).toEqual(planTableWrites(desired, services, S.annotationKey));
      return writes;
    };
    const first = round();
    expect(first.map((w) => w.name)).toEqual(['s0', 's1', 's2']);
    // Stored, as the leader's writes come back: nothing more to write.
    services = services.map((svc, i) => ({ ...svc, annotations: { ...svc.annotations, [KEY]: first[i]!.value! } }));
    expect(round()).toEqual([]);
    // One Service's endpoints change: its table alone is written.
    slices = slices.map((sl, i) => (i === 1 ? endpoints(1, ['198.51.100.3']) : sl));
    const second = round();
    expect(second.map((w) => w.name)).toEqual(['s1']);
    expect(second[0]!.basedOn).toBe(first[1]!.value);
    // Not yet stored: the same write again (the writer's own bookkeeping skips it).
    expect(round()).toEqual(second);
  });

  it('writes nothing in mpls mode (tables are per node there)', () => {
    const mpls = settings({ encapsulation: { mode: 'mpls' } });
    // worker-1 serves the endpoint, so its (local) table is not empty; still nothing to store.
    expect(computeDesiredState(mpls, snap(tunnelService('web', VIP), ['198.51.100.1']), 'worker-1').vips[0]!.table.buckets).toHaveLength(256);
    expect(plan(tunnelService('web', VIP), ['198.51.100.1'], mpls, 'worker-1')).toEqual([]);
  });
});
