// The agent's sequencing, with recording adapters: the real adapters are exercised end to
// end in test/lab/e2e.test.ts; here we pin down the order that keeps traffic flowing.
import { Agent, type AgentParts } from '../../src/agent/agent.js';
import { MemoryEventSink, silentLogger } from '../../src/observe/index.js';
import type { Announcement, ClusterSnapshot, DesiredState, IpAddress, VipPlan } from '../../src/model/index.js';
import { ReconcileLoop, type PassOutcome } from '../../src/system/index.js';

const svc = { namespace: 'shop', name: 'web', uid: 'u1' };
const plan = (vip: string): VipPlan => ({
  vip: vip as IpAddress, family: 4, service: svc, pool: 'public',
  table: { backends: [{ address: '198.51.100.2' as IpAddress, draining: false }], buckets: [0, 0], generation: 1 },
  sourceRanges: [], announced: true, announceReason: 'ready endpoints',
});
const ann = (vip: string): Announcement => ({ prefix: `${vip}/32`, vip, family: 4, communities: [], largeCommunities: [], service: svc }) as unknown as Announcement;
const state = (vips: string[], extra: Partial<DesiredState> = {}): DesiredState => ({
  node: 'tunnel-1', isTunnelNode: true, mode: 'vxlan-lwt', bucketCount: 2, hashSeed: 1,
  vips: vips.map(plan), announcements: vips.map(ann), podSetups: [], problems: [], ...extra,
});

const loops: ReconcileLoop<DesiredState, PassOutcome>[] = [];
afterEach(async () => {
  for (const l of loops.splice(0)) await l.stop();
});

function harness(opts: { dataplaneOk?: () => boolean; graceSeconds?: number; retryInitialMs?: number } = {}) {
  const log: string[] = [];
  let current = state([]);
  const events = new MemoryEventSink();
  // The data plane as the real adapters are: a reconcile loop that retries its own failures.
  const dataplane = new ReconcileLoop<DesiredState, PassOutcome>({
    name: 'dataplane',
    pass: async (d) => {
      if (!d) return { ok: true };
      log.push(`dataplane ${d.isTunnelNode ? d.vips.map((v) => v.vip).join(',') || '-' : 'off'}`);
      const ok = opts.dataplaneOk?.() ?? true;
      return ok ? { ok } : { ok, error: 'kernel said no' };
    },
    failed: (error) => ({ ok: false, error }),
    resyncMs: 600_000,
    backoff: { initialMs: opts.retryInitialMs ?? 60_000, maxMs: 60_000, jitter: 0 },
  });
  dataplane.start();
  loops.push(dataplane);
  const parts: AgentParts = {
    model: { replaceAll: () => undefined, desiredState: () => current, vipResolution: () => ({ vips: [], problems: [], loadBalancerIngress: new Map() }) } as unknown as AgentParts['model'],
    events,
    logger: silentLogger(),
    dataplane: { set: (d) => dataplane.set(d), onResult: (l) => dataplane.onResult(l) },
    bgp: {
      setAnnouncements: (a) => log.push(`announce ${a.map((x) => x.vip).join(',') || '-'}`),
      sync: async () => ({ ok: true, errors: [] }),
      withdrawAll: async () => log.push('withdraw all'),
    },
    drainBfd: () => log.push('bfd admin-down'),
    restoreBfd: () => log.push('bfd up'),
    sleep: async () => undefined,
  };
  const agent = new Agent(parts, { withdrawGraceSeconds: opts.graceSeconds ?? 0.3, unhealthyAfterFailures: 3 });
  loops.push(agent.reconcileLoop);
  const apply = async (d: DesiredState) => {
    current = d;
    agent.onSnapshot({} as ClusterSnapshot);
    await agent.idle();
  };
  return { log, agent, apply, events };
}

describe('Agent sequencing', () => {
  it('programs before it announces, withdraws before it removes, and keeps a withdrawn VIP routed for the grace time', async () => {
    const h = harness();
    await h.apply(state(['203.0.113.10', '203.0.113.11']));
    expect(h.log).toEqual(['dataplane 203.0.113.10,203.0.113.11', 'announce 203.0.113.10,203.0.113.11']);
    h.log.length = 0;

    await h.apply(state(['203.0.113.11']));
    // Withdrawn first; the data path still carries the withdrawn VIP (routers are moving away).
    expect(h.log).toEqual(['announce 203.0.113.11', 'dataplane 203.0.113.10,203.0.113.11', 'announce 203.0.113.11']);
    h.log.length = 0;
    await new Promise((r) => setTimeout(r, 600));
    await h.agent.idle();
    expect(h.log).toContain('dataplane 203.0.113.11');
  });

  it('a node that stops being a tunnel node withdraws everything, then keeps forwarding for the grace time', async () => {
    const h = harness();
    await h.apply(state(['203.0.113.10']));
    h.log.length = 0;
    await h.apply(state([], { isTunnelNode: false }));
    expect(h.log.slice(0, 2)).toEqual(['announce -', 'dataplane 203.0.113.10']);
    await new Promise((r) => setTimeout(r, 600));
    await h.agent.idle();
    expect(h.log.at(-2)).toBe('dataplane off');
  });

  it('a failing data plane holds back new announcements, and after repeated failures the node withdraws and goes BFD AdminDown', async () => {
    let ok = true;
    const h = harness({ dataplaneOk: () => ok });
    await h.apply(state(['203.0.113.10']));
    h.log.length = 0;
    ok = false;
    await h.apply(state(['203.0.113.10', '203.0.113.12']));
    expect(h.log).toEqual(['dataplane 203.0.113.10,203.0.113.12']); // .12 not announced, .10 kept
    await h.apply(state(['203.0.113.10', '203.0.113.12', '203.0.113.13']));
    await h.apply(state(['203.0.113.10', '203.0.113.12', '203.0.113.13', '203.0.113.14']));
    expect(h.log.slice(-2)).toEqual(['announce -', 'bfd admin-down']);
    h.log.length = 0;
    ok = true;
    await h.apply(state(['203.0.113.10']));
    expect(h.log).toEqual(['dataplane 203.0.113.10', 'bfd up', 'announce 203.0.113.10']);
  });

  it('maintenance: withdraws, keeps forwarding, BFD AdminDown after the grace time; back to normal when it ends', async () => {
    const h = harness({ graceSeconds: 0.2 });
    await h.apply(state(['203.0.113.10']));
    h.log.length = 0;
    await h.apply({ ...state(['203.0.113.10']), announcements: [], maintenance: 'node tunnel-1 is cordoned (spec.unschedulable)' });
    expect(h.log).toEqual(['announce -', 'dataplane 203.0.113.10', 'announce -']);
    await new Promise((r) => setTimeout(r, 400));
    expect(h.log.at(-1)).toBe('bfd admin-down');
    h.log.length = 0;
    await h.apply(state(['203.0.113.10']));
    expect(h.log).toEqual(['dataplane 203.0.113.10', 'bfd up', 'announce 203.0.113.10']);
  });

  it('one owner per retry: the data plane retries on its own, the agent announces what it held back once a retry succeeds', async () => {
    let ok = false;
    const h = harness({ dataplaneOk: () => ok, retryInitialMs: 100 });
    await h.apply(state(['203.0.113.10']));
    expect(h.log).toEqual(['dataplane 203.0.113.10']);
    await new Promise((r) => setTimeout(r, 150));
    await h.agent.idle();
    // The loop's retry ran; the agent did not run a converge of its own for the failure.
    expect(h.log).toEqual(['dataplane 203.0.113.10', 'dataplane 203.0.113.10']);
    ok = true;
    await new Promise((r) => setTimeout(r, 300));
    await h.agent.idle();
    expect(h.log.slice(2, 3)).toEqual(['dataplane 203.0.113.10']); // the successful retry
    expect(h.log).toContain('announce 203.0.113.10');
  });

  it('shutdown withdraws everything, waits, then puts BFD AdminDown', async () => {
    const h = harness();
    await h.apply(state(['203.0.113.10']));
    h.log.length = 0;
    await h.agent.shutdown();
    expect(h.log).toEqual(['withdraw all', 'bfd admin-down']);
  });

  it('reports each problem once as a Warning Event, again only when its message changes', async () => {
    const h = harness();
    const problem = { ref: { kind: 'Service' as const, namespace: 'shop', name: 'web' }, reason: 'VipNotInPool', message: '198.51.100.9 is in no pool' };
    await h.apply(state([], { problems: [problem] }));
    await h.apply(state([], { problems: [problem] }));
    await h.apply(state([], { problems: [{ ...problem, message: '198.51.100.8 is in no pool' }] }));
    expect(h.events.events.map((e) => `${e.type} ${e.reason} ${e.message}`)).toEqual([
      'Warning VipNotInPool 198.51.100.9 is in no pool',
      'Warning VipNotInPool 198.51.100.8 is in no pool',
    ]);
  });
});
