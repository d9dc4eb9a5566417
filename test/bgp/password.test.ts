// BGP passwords from a Secret, against FRR with `neighbor ... password`: the Secret is read
// through the (in-repo) API server as the agent reads it; a wrong password keeps the
// session down with a reason in the status, the right one establishes it, and the
// password appears in no log line, Event, status report or metric.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { Writable } from 'node:stream';
import { LabApiServer, waitFor } from '../../src/lab/index.js';
import { SecretReader } from '../../src/kube/index.js';
import { metricsRegistry, type Logger } from '../../src/observe/index.js';
import { createNodePeersLab, NODE, ROUTER, ROUTER_ASN, waitNeighbor, type NodePeersLab } from './node-peers-lab.js';

const RIGHT = 'Tor-A.md5-Kst-9f3c';
const WRONG = 'not-the-Tor-A-pass';
const NS = 'kube-service-tunnel';
const SECRET = 'kube-service-tunnel-bgp';

const routerBgpd = [
  `router bgp ${ROUTER_ASN}`,
  ' bgp router-id 192.0.2.129',
  ' no bgp ebgp-requires-policy',
  ` neighbor ${NODE.v4} remote-as 64512`,
  ` neighbor ${NODE.v4} password ${RIGHT}`,
  ` neighbor ${NODE.v4} timers 3 9`,
  ` neighbor ${NODE.v4} timers connect 1`,
].join('\n');

function secret(value: string): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET, namespace: NS }, type: 'Opaque', data: { 'tor-a': Buffer.from(`${value}\n`).toString('base64') } };
}

describe('BGP password from a Secret (FRR neighbor password)', () => {
  const api = new LabApiServer();
  const logLines: string[] = [];
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()) }) })],
  }) as unknown as Logger;
  let lab: NodePeersLab;

  beforeAll(async () => {
    await api.start();
    api.apply(secret(WRONG) as never);
    const reader = new SecretReader({ kubeConfig: api.kubeConfig(), namespace: NS });
    lab = await createNodePeersLab({
      bgp: { asn: 64512, routerId: NODE.v4, peers: [{ name: 'tor-a', address: ROUTER.v4, asn: ROUTER_ASN, holdTimeSeconds: 9, keepaliveSeconds: 3, passwordSecretRef: { name: SECRET, key: 'tor-a' } }] },
      routerBgpd,
      readSecret: (name, key) => reader.read(name, key),
      logger,
    });
  }, 60000);

  afterAll(async () => {
    await lab?.destroy();
    await api.stop();
  });

  it('the wrong password: no session, and kst status says why', async () => {
    await lab.apply({});
    // gobgpd's first attempt comes 5-10 s after AddPeer; give it two more.
    await new Promise((r) => setTimeout(r, 15000));
    expect(await lab.neighborState(NODE.v4)).not.toBe('Established');
    const [report] = await lab.speaker.peerReport();
    expect(report?.state).not.toBe('established');
    expect(report?.lastError).toMatch(/TCP-MD5 password from Secret kube-service-tunnel-bgp key "tor-a".*different one/);
  }, 60000);

  it('the right password (Secret updated, re-read): the session establishes and stays up', async () => {
    api.apply(secret(RIGHT) as never);
    await lab.apply({}, true);
    await waitNeighbor(lab, NODE.v4, (s) => s === 'Established', 40000);
    // The speaker's periodic pass must not reset a session that has a password (diff stable).
    const up = await lab.router.vtyshJson<Record<string, { bgpTimerUpMsec?: number; connectionsEstablished?: number }>>(`show bgp neighbors ${NODE.v4} json`);
    await new Promise((r) => setTimeout(r, 5000));
    const later = await lab.router.vtyshJson<Record<string, { connectionsEstablished?: number }>>(`show bgp neighbors ${NODE.v4} json`);
    expect(later[NODE.v4]?.connectionsEstablished).toBe(up[NODE.v4]?.connectionsEstablished);
    await waitFor(async () => (await lab.speaker.peerReport())[0]?.state === 'established', 10000, 200);
    expect((await lab.speaker.peerReport())[0]?.lastError ?? '').not.toMatch(/TCP-MD5/);
  }, 90000);

  it('a Secret key that does not exist: the peer is held down with the reason, not dialled without a password', async () => {
    api.apply({ ...secret(RIGHT), data: { other: Buffer.from('x').toString('base64') } } as never);
    await expect(lab.apply({}, true)).rejects.toThrow(/no such key/); // the agent's reconcile report shows it
    await waitFor(async () => (await lab.client.listPeers()).some((p) => p.adminDown), 10000, 200);
    await waitNeighbor(lab, NODE.v4, (s) => s !== 'Established', 20000);
    const [report] = await lab.speaker.peerReport();
    expect(report?.lastError).toMatch(/password unavailable \(Secret kube-service-tunnel-bgp key "tor-a"\).*no such key \(keys: other\)/);
  }, 60000);

  it('the password is in no log line, Event, status report or metric', async () => {
    const status = JSON.stringify(await lab.speaker.peerReport());
    const metrics = await metricsRegistry.metrics();
    const events = JSON.stringify([...api.list('v1', 'Event'), ...api.list('events.k8s.io/v1', 'Event')]);
    for (const [what, text] of [['logs', logLines.join('')], ['status', status], ['metrics', metrics], ['events', events]] as const) {
      expect({ what, right: text.includes(RIGHT), wrong: text.includes(WRONG) }).toEqual({ what, right: false, wrong: false });
    }
    expect(logLines.length).toBeGreaterThan(0); // the grep looked at something
  });
});
