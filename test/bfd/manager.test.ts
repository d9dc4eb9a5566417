// Two BfdManagers talking over loopback in this process: the socket, timer, demultiplexing,
// counter, metric and BGP-binding layers around the state machine, without namespaces.
import { describe, expect, it } from '@jest/globals';
import dgram from 'node:dgram';
import { BfdBgpBinding, BfdManager, bfdMetrics, bfdStatusReport, BfdState, encodeControlPacket, type BfdStateEvent } from '../../src/bfd/index.js';
import { waitFor } from '../../src/lab/index.js';
import { metricsRegistry, parseStatusReport } from '../../src/observe/index.js';
import { connect, FAST_LOOPBACK as fast, loopbackPair, RecordingPeers, sessionFrom, stateOf, stoppedAfterEach } from '../support/bfd-loopback.js';

const addrs = loopbackPair(61);
const { a: A, b: B } = addrs;

const track = stoppedAfterEach();
function manager(): BfdManager {
  // The agent's registry: an in-thread manager counts nowhere unless told (telemetry.ts).
  return track(new BfdManager({ retryMs: 200, metrics: bfdMetrics() }));
}

async function pair(): Promise<{ a: BfdManager; b: BfdManager }> {
  const a = manager();
  const b = manager();
  await connect(a, b, addrs);
  return { a, b };
}

describe('BfdManager over loopback', () => {
  it('brings a session Up, negotiates, counts, and exports metrics', async () => {
    const { a } = await pair();
    await new Promise((r) => setTimeout(r, 300));
    const s = a.status()[0]!;
    expect(s).toMatchObject({ peer: B, local: A, state: 'Up', remoteState: 'Up', txIntervalMs: 30, rxIntervalMs: 30, detectionTimeMs: 90 });
    expect(s.counters.rxPackets).toBeGreaterThan(3);
    expect(s.counters.txPackets).toBeGreaterThan(3);
    expect(s.uptimeMs).toBeGreaterThanOrEqual(0);
    const text = await metricsRegistry.metrics();
    expect(text).toContain(`kst_bfd_session_state{peer="${B}"} 3`);
    expect(text).toMatch(new RegExp(`kst_bfd_packets_total\\{peer="${B.replace(/\./g, '\\.')}",direction="rx"\\} [1-9]`));
    expect(text).toContain(`kst_bfd_state_changes_total{peer="${B}",state="Up"}`);
    // `kst status` carries the same, and its own parser accepts it.
    const report = parseStatusReport({ vips: [], bgpPeers: [], reconcile: [], bfdSessions: bfdStatusReport(a.status()) });
    expect(report.bfdSessions[0]).toMatchObject({ peer: B, state: 'Up', detectTimeMs: 90, txIntervalMs: 30 });
  });

  it('drops and counts invalid and unmatched packets without disturbing the session', async () => {
    const { a } = await pair();
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, B, () => r()));
    const send = (buf: Buffer): Promise<void> => new Promise((r) => sock.send(buf, 3784, A, () => r()));
    await send(Buffer.from('not bfd'));
    const stranger = encodeControlPacket({ diag: 0, state: BfdState.Up, poll: false, final: false, controlPlaneIndependent: false, demand: false, detectMult: 3, myDiscriminator: 7, yourDiscriminator: 12345, desiredMinTxUs: 1e6, requiredMinRxUs: 1e6, requiredMinEchoRxUs: 0 });
    await send(stranger);
    const noDiscriminator = Buffer.from(stranger);
    noDiscriminator.writeUInt32BE(0, 4);
    await send(noDiscriminator);
    sock.close();
    const total = (): number => [...Object.values(a.status()[0]!.counters.dropped), ...Object.values(a.unmatchedDrops())].reduce((x, y) => x + y, 0);
    await waitFor(() => total() >= 3, 2000, 20);
    const dropped = { ...a.status()[0]!.counters.dropped, ...a.unmatchedDrops() };
    expect(dropped).toMatchObject({ truncated: 1, zero_my_discriminator: 1 });
    // Unknown Your Discriminator from the peer's address: not this session's packet.
    expect(dropped.unknown_session).toBe(1);
    expect(stateOf(a, B)).toBe('Up');
    expect(await metricsRegistry.metrics()).toMatch(/kst_bfd_dropped_total\{reason="truncated"\} [1-9]/);
  });

  it('detects a silent peer within the detection time, tells BGP, and re-enables it when BFD is Up again', async () => {
    const { a, b } = await pair();
    const peers = new RecordingPeers();
    const binding = new BfdBgpBinding(a, peers, undefined, { holdDownMs: 0 });
    binding.start();
    const events: BfdStateEvent[] = [];
    a.on('state', (e) => events.push(e));
    const t0 = Date.now();
    await b.stop();
    await waitFor(() => stateOf(a, B) === 'Down', 3000, 5);
    const detectedMs = Date.now() - t0;
    // 3 x 30 ms plus timer slack; an order-of-magnitude bound, not a benchmark.
    expect(detectedMs).toBeLessThan(1000);
    expect(events.at(-1)).toMatchObject({ from: 'Up', to: 'Down', diag: 'control-detection-time-expired' });
    await binding.settled();
    expect(peers.calls).toEqual([`disable ${B} (BFD down: control-detection-time-expired)`]);
    const b2 = manager();
    await b2.setSessions([sessionFrom(addrs, 'b')]);
    await waitFor(() => stateOf(a, B) === 'Up', 8000, 20);
    await binding.settled();
    expect(peers.calls.at(-1)).toBe(`enable ${B}`);
    binding.stop();
  });

  it('hold-down: a session back Up before the hold-down ends leaves the BGP peer alone', async () => {
    const { a, b } = await pair();
    const peers = new RecordingPeers();
    // Long hold-down: the re-created peer comes Up well within it (slow tx is 1 s while not Up).
    const binding = new BfdBgpBinding(a, peers, undefined, { holdDownMs: 15000 });
    binding.start();
    await b.stop();
    await waitFor(() => stateOf(a, B) === 'Down', 3000, 5);
    const b2 = manager();
    await b2.setSessions([sessionFrom(addrs, 'b')]);
    await waitFor(() => stateOf(a, B) === 'Up', 12000, 20);
    await binding.settled();
    expect(peers.calls).toEqual([]);
    binding.stop();
  });

  it('drain: withdraws first, then AdminDown; the peer sees Down with remote diag administratively-down, BGP untouched', async () => {
    const { a, b } = await pair();
    const peers = new RecordingPeers();
    const binding = new BfdBgpBinding(a, peers, undefined, { holdDownMs: 0 });
    binding.start();
    const order: string[] = [];
    a.on('state', (e) => order.push(`a ${e.to}`));
    await binding.drain(async () => {
      order.push('withdrawn');
      expect(stateOf(a, B)).toBe('Up');
    });
    expect(order).toEqual(['withdrawn', 'a AdminDown']);
    await waitFor(() => stateOf(b, A) === 'Down', 3000, 10);
    expect(b.status()[0]).toMatchObject({ state: 'Down', localDiag: 'neighbor-signaled-session-down', remoteDiag: 'administratively-down', remoteState: 'AdminDown' });
    await binding.settled();
    expect(peers.calls).toEqual([]);
    // A session added while drained starts AdminDown too; restore brings everything back.
    binding.restore();
    await waitFor(() => stateOf(a, B) === 'Up' && stateOf(b, A) === 'Up', 8000, 20);
    binding.stop();
  });

  it('declarative set: profile change renegotiates without a flap, removal tells the peer AdminDown, bad entries are skipped', async () => {
    const { a, b } = await pair();
    const flaps: BfdStateEvent[] = [];
    b.on('state', (e) => flaps.push(e));
    await a.setSessions([{ peer: B, local: A, profile: { minTxMs: 90, minRxMs: 60, multiplier: 4 } }]);
    await waitFor(() => b.status()[0]!.detectionTimeMs === 360 && a.status()[0]!.txIntervalMs === 90, 3000, 20);
    expect(a.status()[0]).toMatchObject({ state: 'Up', txIntervalMs: 90, rxIntervalMs: 60, detectionTimeMs: 180 });
    expect(flaps).toEqual([]);
    await a.setSessions([{ peer: 'not-an-ip', local: A, profile: fast }, { peer: B, local: A, profile: { ...fast, multiplier: 0 } }]);
    expect(a.status()).toEqual([]);
    await waitFor(() => stateOf(b, A) === 'Down', 3000, 10);
    expect(b.status()[0]!.remoteDiag).toBe('administratively-down');
  });

  it('retries a session whose local address cannot be bound yet, reporting why', async () => {
    const a = manager();
    await a.setSessions([{ peer: B, local: '192.0.2.250', profile: fast }]);
    expect(a.status()[0]!.lastError).toMatch(/192\.0\.2\.250/);
    expect(a.status()[0]!.state).toBe('Down');
  });
});
