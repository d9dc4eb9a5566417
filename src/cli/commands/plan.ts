// `kst plan`: the desired state one node would program, computed offline from a config
// file and Kubernetes YAML. Same input, same output, byte for byte, on every run.
import { describeIssue } from '../../kube/objects.js';
import { bucketShares, computeDesiredState, modeTraits, type DesiredState, type NodeBgp, type NodePeer, type VipPlan } from '../../model/index.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../args.js';
import { describeProblem, loadOfflineConfig, readObjects, snapshotFor } from './validate.js';

/** Left-aligned columns, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

function backendsSummary(v: VipPlan): string {
  if (v.table.backends.length === 0) return '-';
  const shares = bucketShares(v.table);
  return v.table.backends
    .map((b) => `${b.address}${b.nodeName ? `@${b.nodeName}` : ''}=${b.draining ? 'draining' : `${shares.get(b.address) ?? 0}`}`)
    .join(', ');
}

export function renderPlan(state: DesiredState): string {
  const out: string[] = [];
  const role = modeTraits(state.mode).announcers === 'serving-nodes' ? (state.isTunnelNode ? 'serves local endpoints' : 'no local endpoints') : state.isTunnelNode ? 'tunnel node' : 'not a tunnel node';
  out.push(`node ${state.node}: ${role}; mode ${state.mode}; ${state.bucketCount} buckets; hash seed 0x${state.hashSeed.toString(16)}`);
  out.push('', `VIPs (${state.vips.length}); BACKENDS lists address@node and buckets owned:`);
  out.push(
    ...table(
      ['VIP', 'SERVICE', 'POOL', 'ANNOUNCE', 'WHY', 'BACKENDS'],
      state.vips.map((v) => [v.vip, `${v.service.namespace}/${v.service.name}`, v.pool, v.announced ? 'yes' : 'no', v.announceReason, backendsSummary(v)]),
    ).map((l) => `  ${l}`),
  );
  if (state.bgp) out.push('', ...renderBgp(state.bgp));
  out.push('', `Announcements (${state.announcements.length}):`);
  if (state.announcements.length > 0) {
    out.push(
      ...table(
        ['PREFIX', 'SERVICE', 'COMMUNITIES', 'LARGE COMMUNITIES', 'LOCAL PREF', 'PEERS'],
        state.announcements.map((a) => [
          a.prefix,
          `${a.service.namespace}/${a.service.name}`,
          a.communities.join(' ') || '-',
          a.largeCommunities.join(' ') || '-',
          a.localPref?.toString() ?? '-',
          a.peers ? a.peers.join(' ') || '(none)' : '(every peer)',
        ]),
      ).map((l) => `  ${l}`),
    );
  }
  out.push('', `Pod set-ups (${state.podSetups.length}):`);
  if (state.podSetups.length > 0) {
    out.push(...table(['POD', 'POD IP', 'VIPS'], state.podSetups.map((p) => [`${p.pod.namespace}/${p.pod.name}`, p.podIp, p.vips.join(', ')])).map((l) => `  ${l}`));
  }
  out.push('', `Problems (${state.problems.length}):`);
  out.push(...state.problems.map((p) => `  ${describeProblem(p)}`));
  return out.join('\n');
}

function passwordText(p: NodePeer): string {
  if (!p.password) return '-';
  return p.password.kind === 'secret' ? `secret ${p.password.name}/${p.password.key}` : `file ${p.password.path}`;
}

/** The sessions the node opens: what `show bgp summary` on the node would list, and with what. */
export function renderBgp(b: NodeBgp): string[] {
  const rid = b.routerId ?? '(the node\'s IPv4 address towards its first peer)';
  return [
    `BGP: AS ${b.asn} (from ${b.asnFrom}), router id ${rid}${b.routerId ? ` (from ${b.routerIdFrom})` : ''}`,
    `Peers this node dials (${b.peers.length}):`,
    ...(b.peers.length === 0
      ? []
      : table(
          ['NAME', 'ADDRESS', 'PEER AS', 'LOCAL AS', 'SOURCE', 'HOLD/KEEPALIVE', 'BFD', 'PASSWORD', 'NODE SELECTOR'],
          b.peers.map((p) => [
            p.name,
            p.address,
            String(p.asn),
            String(p.localAsn),
            p.sourceAddress ?? '(kernel)',
            `${p.holdTimeSeconds}/${p.keepaliveSeconds}s`,
            p.bfdProfile ?? '-',
            passwordText(p),
            p.nodeSelector || '(every node)',
          ]),
        ).map((l) => `  ${l}`)),
  ];
}

/** Indented JSON with number lists (bucket tables) on one line each. */
export function planJson(state: DesiredState): string {
  // Bucket tables are typed arrays (types.ts, BucketIndices), which JSON writes as objects.
  const lists = (_k: string, v: unknown): unknown => (ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v);
  return JSON.stringify(state, lists, 2).replace(/\[\n\s+(-?\d+(?:,\n\s+-?\d+)*)\n\s+\]/g, (_m, list: string) => `[${list.split(/,\s+/).join(', ')}]`);
}

const HELP = `usage: kst plan --config FILE --objects DIR|FILE... [--node NAME] [--json] [--set path=value]...

Prints the desired state one node would program, computed offline: the BGP peers it
dials (by each peer's nodeSelector) with their AS numbers, source address and password
source, which VIPs it announces and why (not), each VIP's bucket table (buckets per endpoint; the full
table with --json), and the pod set-ups on that node. The output depends only on the
inputs: running it twice gives identical output.

  --config FILE      agent configuration (YAML)
  --objects PATH     Kubernetes objects: file or directory; repeatable
  --node NAME        the node to plan for (default: nodeName from the config)
  --json             print the DesiredState as JSON (full bucket tables)
  --set path=value   override a configuration field; repeatable
  -h, --help         this text

Environment variables (KST_*) are not read: the result depends on the files and flags only.

Exit status: 0 planned (problems are part of the plan), 1 invalid config or objects
unreadable, 2 usage error.`;

export const command: Command = {
  summary: 'print the desired state of one node, offline (announcements, bucket tables, pod set-ups)',
  async run(args) {
    const parsed = parseCommandArgs('plan', args, {
          config: { type: 'string' },
          objects: { type: 'string', multiple: true },
          node: { type: 'string' },
          json: { type: 'boolean' },
          set: { type: 'string', multiple: true },
          help: { type: 'boolean', short: 'h' },
        }, HELP);
    if ('exit' in parsed) return parsed.exit;
    const { values } = parsed;
    if (!values.config || !values.objects?.length) {
      console.error(`kst plan: --config and --objects are required\n\n${HELP}`);
      return 2;
    }
    const { config, errors } = loadOfflineConfig(values.config, values.set ?? []);
    if (!config) {
      for (const e of errors) console.error(e);
      return 1;
    }
    let objects;
    try {
      objects = readObjects(values.objects);
    } catch (err) {
      console.error(`kst plan: ${(err as Error).message}`);
      return 1;
    }
    if (objects.fileErrors.length > 0) {
      for (const e of objects.fileErrors) console.error(e);
      return 1;
    }
    const node = values.node ?? config.nodeName;
    if (!node) {
      console.error(`kst plan: --node is required (nodes in the objects: ${objects.nodes.map((n) => n.name).join(', ') || 'none'})`);
      return 2;
    }
    // Object issues are warnings here: the plan uses what could be read, as the agent would.
    for (const i of objects.issues) console.error(`warning: ${describeIssue(i)}`);
    const state = computeDesiredState(config, snapshotFor(objects, node), node);
    console.log(values.json ? planJson(state) : renderPlan(state));
    return 0;
  },
};
