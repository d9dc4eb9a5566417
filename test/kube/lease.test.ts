import { afterEach, beforeAll, afterAll, describe, expect, it } from '@jest/globals';
import { LeaderElector } from '../../src/kube/index.js';
import { LabApiServer, waitFor } from '../../src/lab/index.js';

describe('LeaderElector on a coordination.k8s.io/v1 Lease', () => {
  const server = new LabApiServer();
  const electors: LeaderElector[] = [];
  beforeAll(() => server.start());
  afterEach(async () => {
    for (const e of electors.splice(0)) await e.stop({ release: false });
  });
  afterAll(() => server.stop());

  const contender = (name: string, identity: string, log: string[], durations = { leaseDurationMs: 1500, renewDeadlineMs: 1000 }) => {
    const e = new LeaderElector({
      kubeConfig: server.kubeConfig(),
      namespace: 'kube-system',
      name,
      identity,
      ...durations,
      retryPeriodMs: 100,
      onStartedLeading: () => log.push(`${identity} started`),
      onStoppedLeading: () => log.push(`${identity} stopped`),
    });
    electors.push(e);
    return e;
  };
  const holder = (name: string) => (server.find('coordination.k8s.io/v1', 'Lease', name, 'kube-system')?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;

  it('of two contenders exactly one leads; the other takes over when it stops renewing', async () => {
    const log: string[] = [];
    const a = contender('crash', 'node-a', log);
    const b = contender('crash', 'node-b', log);
    a.start();
    b.start();
    await waitFor(() => a.isLeader || b.isLeader, 5000);
    // Several renew periods: never two leaders, the Lease names the one that leads.
    for (let i = 0; i < 10; i++) {
      expect(Number(a.isLeader) + Number(b.isLeader)).toBeLessThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [first, second] = a.isLeader ? [a, b] : [b, a];
    const firstId = first === a ? 'node-a' : 'node-b';
    const secondId = first === a ? 'node-b' : 'node-a';
    expect(holder('crash')).toBe(firstId);
    expect(second.leader).toBe(firstId);

    // The leader dies without releasing: the other waits out the lease duration, then leads.
    const stoppedAt = Date.now();
    await first.stop({ release: false });
    await waitFor(() => second.isLeader, 5000, 20);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1000);
    expect(holder('crash')).toBe(secondId);
    expect(log).toEqual([`${firstId} started`, `${firstId} stopped`, `${secondId} started`]);
    const spec = server.find('coordination.k8s.io/v1', 'Lease', 'crash', 'kube-system')!.spec as { leaseTransitions: number };
    expect(spec.leaseTransitions).toBe(1);
  });

  it('a released lease is taken over without waiting for expiry', async () => {
    const log: string[] = [];
    // A long lease: waiting for expiry would take 20 s, a release is taken over at once.
    const long = { leaseDurationMs: 20_000, renewDeadlineMs: 10_000 };
    const a = contender('release', 'node-a', log, long);
    a.start();
    await waitFor(() => a.isLeader, 5000, 20);
    const b = contender('release', 'node-b', log, long);
    b.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(b.isLeader).toBe(false);
    const releasedAt = Date.now();
    await a.stop();
    await waitFor(() => b.isLeader, 5000, 20);
    expect(Date.now() - releasedAt).toBeLessThan(10_000);
  });

  it('a leader that cannot reach the API steps down within the renew deadline', async () => {
    const log: string[] = [];
    const a = contender('outage', 'node-a', log);
    a.start();
    await waitFor(() => a.isLeader, 5000, 20);
    await server.stop();
    try {
      await waitFor(() => !a.isLeader, 5000, 20);
      expect(log).toEqual(['node-a started', 'node-a stopped']);
    } finally {
      await server.start();
    }
    // And it leads again once the API is back (its own lease, nobody else contending).
    await waitFor(() => a.isLeader, 5000, 20);
  });
});
