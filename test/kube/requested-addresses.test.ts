// Requested addresses end to end through the API server: Services as the API serves them
// (spec.loadBalancerIP, the pool annotation, labels) are converted, resolved against the
// pools, and the result written to status.loadBalancer.ingress by the status writer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LoadBalancerStatusWriter, convertService } from '../../src/kube/index.js';
import { LabApiServer } from '../../src/lab/index.js';
import { resolveVips, type ServiceInput } from '../../src/model/index.js';
import { settings } from '../model/helpers.js';

const CLASS = 'cmd.nu/kube-service-tunnel';

describe('requested addresses and pools through the API', () => {
  const server = new LabApiServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  const lb = (name: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop', ...meta },
    spec: { type: 'LoadBalancer', loadBalancerClass: CLASS, selector: { app: name }, ports: [{ port: 80 }], ...spec },
  });
  const seen = (): ServiceInput[] => server.list('v1', 'Service').map((o) => convertService(o).value!);
  const ingress = (name: string) => (server.find('v1', 'Service', name, 'shop')!.status as { loadBalancer?: { ingress?: { ip: string }[] } } | undefined)?.loadBalancer?.ingress?.map((i) => i.ip) ?? [];

  it('loadBalancerIP, the pool annotation and a pool selecting Services by label reach status; bad requests get no address', async () => {
    const pools = [
      ...settings().pools,
      { name: 'edge', cidrs: ['198.51.100.0/29'], namespaces: ['shop'], autoAssign: false, serviceSelector: 'tier=edge', communities: [], largeCommunities: [] },
    ];
    server.apply(lb('fixed', { loadBalancerIP: '203.0.113.132' }) as never);
    server.apply(lb('edge', {}, { labels: { tier: 'edge' }, annotations: { 'cmd.nu/tunnel-pool': 'edge' } }) as never);
    server.apply(lb('not-edge', {}, { annotations: { 'cmd.nu/tunnel-pool': 'edge' } }) as never);
    server.apply(lb('outside', { loadBalancerIP: '192.0.2.200' }) as never);
    const services = seen();
    expect(services.find((s) => s.name === 'fixed')?.loadBalancerIP).toBe('203.0.113.132');
    expect(services.find((s) => s.name === 'edge')?.labels).toEqual({ tier: 'edge' });

    const r = resolveVips(settings({ pools }), services);
    const writer = new LoadBalancerStatusWriter({ kubeConfig: server.kubeConfig(), loadBalancerClass: CLASS });
    expect((await writer.set(services, r.loadBalancerIngress)).failed).toEqual([]);
    expect(ingress('fixed')).toEqual(['203.0.113.132']);
    expect(ingress('edge')).toEqual(['198.51.100.1']);
    expect(ingress('not-edge')).toEqual([]);
    expect(ingress('outside')).toEqual([]);
    expect(r.problems.map((p) => `${p.ref.name} ${p.reason}`).sort()).toEqual(['not-edge VipNamespaceNotAllowed', 'outside VipNotInPool']);
  });
});
