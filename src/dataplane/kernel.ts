// The one place the data plane talks to the kernel: readback with `ip -json` / `nft -j`,
// and applying ip batches and nft transactions, small ones through long-lived `ip` and
// `nft` processes (command-session.ts). Everything else is pure.
import { runCommand, type CommandRunner } from '../system/index.js';
import type { IpFamily } from '../model/types.js';
import { NFT_TABLE, ROUTE_PROTOCOL } from './layout.js';
import { parseLinks, parseNexthops, parseRules, toRuleMap } from './iproute.js';
import { RouteReadback } from './route-readback.js';
import { canonicalTexts } from './nexthops.js';
import { parseNftTable, parseVipCounters, type VipCounter } from './nft.js';
import type { KernelState, LinkSpec, VipRoutes } from './state.js';
import { XT_ABSENT, parseXtSave, type XtFamilyState } from './xt.js';
import { IpBatchSession, type IpBatchResult, type IpLines } from './ip-session.js';
import { NftSession } from './nft-session.js';

export { parseBatchErrors, type FailedLine, type IpBatchResult } from './ip-session.js';

const TIMEOUT_MS = 120_000;

export class Kernel {
  private readonly sessions = new Map<IpFamily, IpBatchSession>();
  private nftSession?: NftSession;

  constructor(
    /** Network namespace to act in; undefined = this process's own (the node). */
    readonly netns?: string,
    private readonly run: CommandRunner = runCommand,
  ) {}

  private ip(args: readonly string[], input?: string, allowFailure = false) {
    const ns = this.netns ? ['-n', this.netns] : [];
    return this.run('ip', [...ns, ...args], { input, allowFailure, timeoutMs: TIMEOUT_MS });
  }

  private nft(args: readonly string[], input?: string, allowFailure = false) {
    return this.run('nft', args, { netns: this.netns, input, allowFailure, timeoutMs: TIMEOUT_MS });
  }

  /**
   * Everything the data plane owns, read back in parallel. `xt`: also read the xtables
   * HMARK chains (that backend, and clean-up).
   */
  async read(tableBase: number, xt = false): Promise<KernelState> {
    const others = Promise.all([
      this.ip(['-json', '-details', 'link', 'show']),
      this.ip(['-json', 'neigh', 'show', 'nud', 'permanent']),
      this.ip(['-json', '-4', 'rule', 'show']),
      this.ip(['-json', '-6', 'rule', 'show']),
      this.nft(['-j', 'list', 'table', 'inet', NFT_TABLE], undefined, true),
    ]);
    // Awaited only after the reads below: a failure here meanwhile (an `ip` killed at its
    // timeout on a loaded node) must not be an unhandled rejection, which ends the agent.
    // It still fails this read where `others` is awaited.
    others.catch(() => undefined);
    // Nexthop objects first: routes are read straight into their packed form, which
    // names each route's nexthop by the object's canonical text.
    const [nh4, nh6] = await Promise.all([this.ip(['-json', '-4', 'nexthop', 'show']), this.ip(['-json', '-6', 'nexthop', 'show'])]);
    const nexthops = [parseNexthops(nh4.stdout, 4), parseNexthops(nh6.stdout, 6)];
    const owned = nexthops.flatMap((n) => n.owned);
    const canonical = canonicalTexts(owned);
    const [routes4, routes6] = await Promise.all(([4, 6] as const).map((f) => this.readRoutes(f, tableBase, canonical)));
    const [links, neighs, rules4, rules6, nft] = await others;
    const [xt4, xt6] = xt ? await Promise.all([this.xtSave(4), this.xtSave(6)]) : [XT_ABSENT, XT_ABSENT];
    const nftMissing = nft.code !== 0 && /No such file or directory/.test(nft.stderr);
    if (nft.code !== 0 && !nftMissing) throw new Error(`nft list table inet ${NFT_TABLE}: ${nft.stderr.trim()}`);
    return {
      links: new Map(parseLinks(links.stdout, neighs.stdout).map((l): [string, LinkSpec] => [l.name, l])),
      routes: new Map([...routes4!, ...routes6!]),
      nexthops: new Map(owned.map((n) => [n.id, n])),
      foreignNexthopIds: new Set(nexthops.flatMap((n) => n.foreign)),
      rules: toRuleMap([...parseRules(rules4.stdout, 4, tableBase), ...parseRules(rules6.stdout, 6, tableBase)]),
      nft: parseNftTable(nftMissing ? undefined : nft.stdout),
      xt: { v4: xt4, v6: xt6 },
    };
  }

  /** One family's owned routes, parsed as the text arrives (route-readback.ts). */
  private async readRoutes(family: IpFamily, tableBase: number, canonical: ReadonlyMap<number, string>): Promise<Map<string, VipRoutes>> {
    const readback = new RouteReadback(family, tableBase, canonical);
    const ns = this.netns ? ['-n', this.netns] : [];
    const args = [...ns, '-json', `-${family}`, 'route', 'show', 'table', 'all', 'proto', String(ROUTE_PROTOCOL)];
    const r = await this.run('ip', args, { timeoutMs: TIMEOUT_MS, onStdout: (chunk) => readback.push(chunk) });
    // A runner that collects stdout anyway (tests' fakes) hands it over here.
    if (r.stdout) readback.push(r.stdout);
    return readback.result();
  }

  private async xtSave(family: IpFamily): Promise<XtFamilyState> {
    const r = await this.run(family === 4 ? 'iptables-legacy-save' : 'ip6tables-legacy-save', [], { netns: this.netns, allowFailure: true, timeoutMs: TIMEOUT_MS });
    return r.code === 0 ? parseXtSave(r.stdout) : XT_ABSENT;
  }

  /** One xtables-restore transaction (legacy: the whole mangle table is swapped atomically). */
  async applyXt(script: string, family: IpFamily): Promise<void> {
    if (!script) return;
    await this.run(family === 4 ? 'iptables-legacy-restore' : 'ip6tables-legacy-restore', ['--noflush'], { netns: this.netns, input: script, timeoutMs: TIMEOUT_MS });
  }

  /**
   * One batch through a long-lived `ip -force -batch -` (IpBatchSession): every line is
   * tried, so one Service's bad route does not block the others; the failed lines are
   * reported ("Command failed -:N").
   */
  async applyIpBatch(lines: IpLines, family?: IpFamily): Promise<IpBatchResult> {
    const size = 'size' in lines ? lines.size : lines.length;
    if (size === 0) return { ok: true, failed: [], stderr: '' };
    // Generous bound: 256k routes take ~5 s on an idle machine, minutes on a loaded one.
    const timeoutMs = TIMEOUT_MS + 2 * size;
    const key = family === 6 ? 6 : 4;
    let session = this.sessions.get(key);
    if (!session) this.sessions.set(key, (session = new IpBatchSession([...(this.netns ? ['-n', this.netns] : []), ...(family === 6 ? ['-6'] : [])])));
    return session.apply(lines, timeoutMs);
  }

  /** Ends the long-lived ip and nft processes (they are started again when needed). */
  close(): void {
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    this.nftSession?.close();
    this.nftSession = undefined;
  }

  /**
   * One atomic nft transaction; throws with nft's message on failure (nothing applied).
   * `elements`: the script is element and counter commands, one per line, which go to a
   * long-lived `nft -i` (NftSession); table definitions go to `nft -f -`.
   */
  async applyNft(script: string, elements = false): Promise<void> {
    if (!script) return;
    if (!elements) {
      await this.nft(['-f', '-'], script);
      return;
    }
    this.nftSession ??= new NftSession(this.netns);
    await this.nftSession.apply(script, TIMEOUT_MS);
  }

  async vipCounters(): Promise<VipCounter[]> {
    const r = await this.nft(['-j', 'list', 'counters', 'table', 'inet', NFT_TABLE], undefined, true);
    if (r.code !== 0) return [];
    return parseVipCounters(r.stdout);
  }

  /** The device of this node's route to an address (mpls: the pod's veth). */
  async routeDevice(address: string): Promise<string | undefined> {
    const r = await this.ip(['-json', 'route', 'get', address], undefined, true);
    if (r.code !== 0) return undefined;
    const routes = JSON.parse(r.stdout || '[]') as { dev?: string }[];
    return routes[0]?.dev;
  }
}
