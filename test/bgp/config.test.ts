// From the agent's configuration to the speaker's peers, and graceful withdrawal when the
// sidecar does not answer (no gobgpd needed).
import { describe, expect, it } from '@jest/globals';
import { configSchema } from '../../src/config/index.js';
import { bgpSpeakerFromConfig, gracefulRestartSpec, peerSpecFromPlan, withdrawAndWait } from '../../src/bgp/index.js';
import { nodeBgp } from '../../src/model/index.js';

describe('peers from the node plan', () => {
  it('maps each session of the node plan onto gobgpd peer settings; the speaker starts with none', () => {
    const config = configSchema.parse({
      bgp: { asn: 64600, grpcAddress: 'unix:///nonexistent/kst.sock', peers: [
        { address: '192.0.2.1', asn: 65000, localAsn: 64601, sourceAddress: '192.0.2.2', passwordFile: '/run/kst/pw', multihopTtl: 2 },
        { address: '2001:DB8::1', asn: 65001, holdTimeSeconds: 9, keepaliveSeconds: 3, nodeSelector: 'rack=b' },
      ] },
    });
    const { client, speaker } = bgpSpeakerFromConfig(config.bgp, { routerId: '192.0.2.2' });
    expect(speaker.peerStates()).toEqual([]);
    const { plan } = nodeBgp(config.bgp, 'n1', { name: 'n1', labels: { rack: 'a' }, internalIps: [], ready: true, unschedulable: false, taintKeys: [] });
    speaker.setPeers(plan.peers.map((p) => peerSpecFromPlan(p, p.password ? 's3cret' : undefined, { gracefulRestart: { restartTimeSeconds: 120 } })));
    expect(speaker.peerStates().map((p) => p.config)).toEqual([
      { address: '192.0.2.1', asn: 65000, localAsn: 64601, localAddress: '192.0.2.2', password: 's3cret', multihopTtl: 2, holdTimeSeconds: 90, keepaliveSeconds: 30, gracefulRestart: { restartTimeSeconds: 120 } },
    ]);
    expect(speaker.peerStates().every((p) => p.state === 'unknown')).toBe(true);
    client.close();
  });

  it('graceful restart: on by default, off when disabled (gracefulRestartSpec, the defaults every planned peer gets)', () => {
    const peers = [{ address: '192.0.2.1', asn: 65000 }];
    const off = configSchema.parse({ bgp: { grpcAddress: 'unix:///nonexistent/kst.sock', peers, gracefulRestart: { enabled: false } } });
    expect(gracefulRestartSpec(off.bgp)).toEqual({});
    const on = configSchema.parse({ bgp: { grpcAddress: 'unix:///nonexistent/kst.sock', peers, gracefulRestart: { enabled: true, restartTimeSeconds: 30 } } });
    expect(gracefulRestartSpec(on.bgp)).toEqual({ gracefulRestart: { restartTimeSeconds: 30 } });
    expect(gracefulRestartSpec(configSchema.parse({}).bgp)).toEqual({ gracefulRestart: { restartTimeSeconds: 120 } });
    expect(() => configSchema.parse({ bgp: { gracefulRestart: { restartTimeSeconds: 5000 } } })).toThrow();
  });
});

describe('withdrawAndWait', () => {
  it('does not throw when gobgpd is unreachable, still waits the grace time and stops', async () => {
    const config = configSchema.parse({ bgp: { grpcAddress: 'unix:///nonexistent/kst.sock' } });
    const { client, speaker } = bgpSpeakerFromConfig(config.bgp, { routerId: '192.0.2.2' });
    speaker.start();
    const slept: number[] = [];
    const res = await withdrawAndWait(speaker, { graceSeconds: 3, stop: true, withdrawTimeoutMs: 3000, sleep: async (ms) => void slept.push(ms) });
    expect(res?.ok).not.toBe(true);
    expect(slept).toEqual([3000]);
    expect((await speaker.sync()).errors).toEqual(['speaker not started']);
    client.close();
  });
});
