// RFC 5881 GTSM in the kernel: BFD packets with TTL / hop limit other than 255 never reach
// the agent's socket. Real nftables in a namespace; the packets come from another
// namespace through a veth, sent by Node with setTTL.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BfdChild } from '../../src/bfd/child.js';
import { ensureGtsm, gtsmDrops, gtsmRuleset, GTSM_TABLE, removeGtsm } from '../../src/bfd/index.js';
import { NetnsSet, waitFor } from '../../src/lab/index.js';
import { NFT_TABLE, runCommand } from '../../src/system/index.js';

const A4 = '198.51.100.81';
const B4 = '198.51.100.82';
const A6 = '2001:db8:bfd1::1';
const B6 = '2001:db8:bfd1::2';

/** Sends `count` BFD Down packets (Your Discriminator 0, so they match the session by address) with `ttl`. */
function sender(from: string, to: string, ttl: number, count: number): string {
  const type = to.includes(':') ? 'udp6' : 'udp4';
  return `
const dgram = require('node:dgram');
const s = dgram.createSocket('${type}');
s.bind(0, '${from}', async () => {
  s.setTTL(${ttl});
  const p = Buffer.alloc(24); p[0] = 0x20; p[1] = 0x40; p[2] = 3; p[3] = 24;
  p.writeUInt32BE(0x4b53540a, 4); p.writeUInt32BE(1000000, 12); p.writeUInt32BE(1000000, 16);
  for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send(p, 3784, '${to}', r));
  s.close();
});`;
}

describe('BFD TTL check (RFC 5881 GTSM) in nftables', () => {
  const ns = new NetnsSet();
  let a: string;
  let b: string;
  let agent: BfdChild | undefined;

  beforeAll(async () => {
    a = await ns.create('kbga');
    b = await ns.create('kbgb');
    await ns.link(a, b, { aAddrs: [`${A4}/29`, `${A6}/64`], bAddrs: [`${B4}/29`, `${B6}/64`] });
  });
  afterAll(async () => {
    await agent?.kill();
    await ns.destroy();
  });

  it('renders the ruleset in the project-owned table (golden)', () => {
    expect(GTSM_TABLE.startsWith(NFT_TABLE)).toBe(true);
    expect(gtsmRuleset()).toBe(`add table inet kube_service_tunnel_bfd
flush table inet kube_service_tunnel_bfd
table inet kube_service_tunnel_bfd {
\tchain input {
\t\ttype filter hook input priority -10; policy accept;
\t\tudp dport 3784 ip ttl != 255 counter drop comment "bfd-gtsm-ipv4"
\t\tudp dport 3784 ip6 hoplimit != 255 counter drop comment "bfd-gtsm-ipv6"
\t}
}
`);
  });

  it('is idempotent and removal touches only its own table', async () => {
    await runCommand('nft', ['add', 'table', 'inet', 'someone_else'], { netns: a });
    await ensureGtsm({ netns: a });
    await ensureGtsm({ netns: a });
    const listed = (await runCommand('nft', ['list', 'table', 'inet', GTSM_TABLE], { netns: a })).stdout;
    expect(listed.match(/drop/g)).toHaveLength(2);
    await removeGtsm({ netns: a });
    await removeGtsm({ netns: a });
    const tables = (await runCommand('nft', ['list', 'tables'], { netns: a })).stdout;
    expect(tables).toContain('someone_else');
    expect(tables).not.toContain(GTSM_TABLE);
  });

  it('drops TTL 64 / hop limit 64 BFD packets before the agent sees them; TTL 255 ones arrive', async () => {
    await ensureGtsm({ netns: a });
    agent = await BfdChild.start(a);
    await agent.setSessions([
      { peer: B4, local: A4, profile: { minTxMs: 1000, minRxMs: 1000, multiplier: 3 } },
      { peer: B6, local: A6, profile: { minTxMs: 1000, minRxMs: 1000, multiplier: 3 } },
    ]);
    const rx = async (): Promise<number[]> => (await agent!.status()).map((s) => s.counters.rxPackets);
    const before = await gtsmDrops({ netns: a });
    for (const [from, to] of [[B4, A4], [B6, A6]] as const) await runCommand(process.execPath, ['-e', sender(from, to, 64, 5)], { netns: b });
    await waitFor(async () => {
      const d = await gtsmDrops({ netns: a });
      return d.ipv4 - before.ipv4 === 5 && d.ipv6 - before.ipv6 === 5;
    }, 5000, 50);
    expect(await rx()).toEqual([0, 0]);
    for (const [from, to] of [[B4, A4], [B6, A6]] as const) await runCommand(process.execPath, ['-e', sender(from, to, 255, 3)], { netns: b });
    await waitFor(async () => (await rx()).every((n) => n === 3), 5000, 50);
    const after = await gtsmDrops({ netns: a });
    expect(after).toEqual({ ipv4: before.ipv4 + 5, ipv6: before.ipv6 + 5 });
    // The TTL-255 Down packets were accepted by the state machine: Down + rx Down -> Init.
    expect((await agent.status()).map((s) => s.state)).toEqual(['Init', 'Init']);
  });

  it('our own packets pass the check: two agents behind GTSM come Up on IPv4 and IPv6', async () => {
    await ensureGtsm({ netns: b });
    const other = await BfdChild.start(b);
    try {
      await other.setSessions([
        { peer: A4, local: B4, profile: { minTxMs: 50, minRxMs: 50, multiplier: 3 } },
        { peer: A6, local: B6, profile: { minTxMs: 50, minRxMs: 50, multiplier: 3 } },
      ]);
      await other.waitForState(A4, 'Up', 10000);
      await other.waitForState(A6, 'Up', 10000);
      await agent!.waitForState(B4, 'Up', 10000);
      await agent!.waitForState(B6, 'Up', 10000);
      const drops = { a: await gtsmDrops({ netns: a }), b: await gtsmDrops({ netns: b }) };
      expect(drops.b).toEqual({ ipv4: 0, ipv6: 0 });
      expect(drops.a).toEqual({ ipv4: 5, ipv6: 5 });
    } finally {
      await other.kill();
    }
  });
});
