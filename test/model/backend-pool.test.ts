// Backends are shared between VIPs (one object per distinct endpoint) and the pool forgets
// the backends nobody uses any more.
import { describe, expect, it } from '@jest/globals';
import { BackendPool } from '../../src/model/backend-pool.js';
import { collectEndpoints, computeDesiredState, EndpointPool, IncrementalModel, type IpAddress } from '../../src/model/index.js';
import { cluster, ep, settings, slice, tunnelService } from './helpers.js';

describe('BackendPool', () => {
  it('hands out one object per distinct endpoint, another for another node, state or pod', () => {
    const pool = new BackendPool();
    const a = pool.backendFor(ep('192.0.2.1', 'worker-1'), false);
    expect(pool.backendFor(ep('192.0.2.1', 'worker-1'), false)).toBe(a);
    expect(pool.backendFor(ep('192.0.2.1', 'worker-1'), true)).not.toBe(a);
    expect(pool.backendFor(ep('192.0.2.1', 'worker-2'), false)).not.toBe(a);
    const withPod = pool.backendFor(ep('192.0.2.1', 'worker-1', { pod: { namespace: 'default', name: 'p' } }), false);
    expect(withPod).not.toBe(a);
    expect(withPod).toEqual({ address: '192.0.2.1', nodeName: 'worker-1', pod: { namespace: 'default', name: 'p' }, draining: false });
    expect(pool.backends).toBe(4);
  });

  it('shares backends between Services that list the same endpoints', () => {
    const pool = new BackendPool();
    const one = collectEndpoints([slice('a', [ep('192.0.2.1', 'worker-1'), ep('192.0.2.2', 'worker-2')])], 'tunnel-1', pool);
    const two = collectEndpoints([slice('b', [ep('192.0.2.2', 'worker-2'), ep('192.0.2.1', 'worker-1')])], 'tunnel-1', pool);
    expect(two.backends[4][0]).toBe(one.backends[4][0]);
    expect(two.backends[4][1]).toBe(one.backends[4][1]);
    expect(pool.backends).toBe(2);
  });

  it('sweeps to the live backends once it holds twice as many', () => {
    const pool = new BackendPool();
    const live = Array.from({ length: 10 }, (_, i) => pool.backendFor(ep(`192.0.2.${i + 1}`, 'worker-1'), false));
    pool.sweep([live]);
    expect(pool.backends).toBe(10);
    for (let i = 0; i < 11; i++) pool.backendFor(ep(`198.51.100.${i + 1}`, 'worker-1'), false);
    expect(pool.needsSweep(0)).toBe(true);
    pool.sweep([live]);
    expect(pool.backends).toBe(10);
    expect(pool.backendFor(ep('192.0.2.1', 'worker-1'), false)).toBe(live[0]);
  });
});

describe('IncrementalModel backend sharing', () => {
  it('gives two VIPs over the same pods the same Backend objects', () => {
    const eps = [ep('192.0.2.1', 'worker-1'), ep('192.0.2.2', 'worker-2')];
    const model = new IncrementalModel(settings(), 'tunnel-1').replaceAll({
      services: [tunnelService('a', '203.0.113.10'), tunnelService('b', '203.0.113.11')],
      endpointSlices: [slice('a', eps), slice('b', eps.map((e) => ({ ...e })))],
      nodes: cluster,
      localPods: [],
    });
    const [a, b] = model.desiredState().vips;
    expect(a!.table.backends.map((x) => x.address)).toEqual(['192.0.2.1' as IpAddress, '192.0.2.2' as IpAddress]);
    expect(b!.table.backends[0]).toBe(a!.table.backends[0]);
    expect(b!.table.backends[1]).toBe(a!.table.backends[1]);
  });
});

describe('EndpointPool', () => {
  it('forgets everything once full, and pools again from there', () => {
    const pool = new EndpointPool(2);
    const a = pool.intern(ep('192.0.2.1', 'worker-1'));
    expect(pool.intern(ep('192.0.2.1', 'worker-1'))).toBe(a);
    pool.intern(ep('192.0.2.2', 'worker-1'));
    expect(pool.endpoints).toBe(2);
    const c = ep('192.0.2.3', 'worker-1');
    expect(pool.intern(c)).toBe(c);
    expect(pool.endpoints).toBe(1);
    expect(pool.intern(ep('192.0.2.1', 'worker-1'))).not.toBe(a);
  });
});

describe('IncrementalModel.prepare', () => {
  const snapshotOf = (ready: boolean) => ({
    services: [tunnelService('a', '203.0.113.10'), tunnelService('b', '203.0.113.11'), tunnelService('c', '203.0.113.12')],
    endpointSlices: ['a', 'b', 'c'].map((s) => slice(s, [ep('192.0.2.1', 'worker-1', { ready }), ep('192.0.2.2', 'worker-2')])),
    nodes: cluster,
    localPods: [],
  });

  it('computes the tables in slices, pausing between them, and desiredState() gives the same result', async () => {
    const model = new IncrementalModel(settings(), 'tunnel-1').replaceAll(snapshotOf(true));
    let pauses = 0;
    await model.prepare(async () => void pauses++, 0);
    expect(pauses).toBe(3);
    expect(model.desiredState()).toEqual(computeDesiredState(settings(), snapshotOf(true), 'tunnel-1'));
  });

  it('inputs replaced during a pause win', async () => {
    const model = new IncrementalModel(settings(), 'tunnel-1').replaceAll(snapshotOf(true));
    const later = snapshotOf(false);
    await model.prepare(async () => void model.replaceAll(later), 0);
    expect(model.desiredState()).toEqual(computeDesiredState(settings(), later, 'tunnel-1'));
  });
});
