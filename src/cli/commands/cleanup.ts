// `kst cleanup`: every area's cleanup, one after the other, each guarded (one failure does
// not stop the others): the data plane (nft table, fwmark rules, per-bucket routes,
// nexthops, kst-* tunnel links), BFD's TTL-255 table, and the pod-side objects in every pod
// namespace (kst-* decap links, lo:kst addresses, our MPLS route). Objects the project does
// not own are never touched. The agent never does this on exit (fail static); this is the
// explicit way to take the data path down.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { removeGtsm } from '../../bfd/index.js';
import { ConfigError, loadConfig } from '../../config/index.js';
import { Kernel, cleanupKernel } from '../../dataplane/index.js';
import { NamespaceFinder, cleanupPodNamespaces } from '../../podnet/index.js';
import type { Command } from '../command.js';

const USAGE = `usage: kst cleanup [--config FILE] [--netns NAME] [--pod-netns-prefix PREFIX]

Removes everything the project made on this node:
  dataplane  the nftables table inet kube_service_tunnel, fwmark rules and
             routes (protocol 245) in the configured table range, our
             nexthops and kst-* links
  bfd        the TTL-255 table inet kube_service_tunnel_bfd
  podnet     in every pod network namespace: kst-* decap links, lo:kst
             addresses and the project's MPLS route
Objects the project does not own are never touched.

  --config FILE             agent configuration (for dataplane.tableBase); also KST_CONFIG
  --netns NAME              the node is this named network namespace (tests, the lab);
                            pod namespaces are then swept only with --pod-netns-prefix
                            (other namespaces on the machine belong to other nodes)
  --pod-netns-prefix PREFIX only pod namespaces whose name starts with PREFIX (the lab);
                            also KST_LAB_NETNS_PREFIX`;

interface Area {
  readonly name: string;
  readonly run: () => Promise<string>;
}

export const command: Command = {
  summary: 'remove everything this node programmed (data path, BFD TTL table, pod-side objects)',
  async run(args) {
    let values: { config?: string; netns?: string; 'pod-netns-prefix'?: string; help?: boolean };
    try {
      ({ values } = parseArgs({ args, options: { config: { type: 'string' }, netns: { type: 'string' }, 'pod-netns-prefix': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
    } catch (err) {
      console.error(`kst cleanup: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
      return 2;
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    let tableBase: number;
    try {
      tableBase = loadConfig({ file: values.config, env: process.env }).dataplane.tableBase;
    } catch (err) {
      console.error(`kst cleanup: ${err instanceof ConfigError ? err.message : String(err)}`);
      return 1;
    }
    const netns = values.netns;
    const prefix = values['pod-netns-prefix'] ?? process.env.KST_LAB_NETNS_PREFIX;
    const where = netns ? ` in netns ${netns}` : '';
    // Pod namespaces: all but the node's own; named ones only when the node is one (tests,
    // the lab), and only those starting with the prefix when one is given.
    const named = (path: string) => /^\/run\/netns\//.test(path);
    const finder = new NamespaceFinder({
      ...(netns ? { hostNetnsPath: `/run/netns/${netns}` } : {}),
      ...(netns || prefix
        ? { accept: (c: { path: string }) => named(c.path) && basename(c.path) !== netns && (!prefix || basename(c.path).startsWith(prefix)) }
        : {}),
    });
    const areas: Area[] = [
      { name: 'dataplane', run: async () => `removed ${(await cleanupKernel(new Kernel(netns), tableBase)).operations} data-plane objects${where}` },
      { name: 'bfd', run: async () => (await removeGtsm(netns ? { netns } : {}), `removed the BFD TTL table if present${where}`) },
      {
        name: 'podnet',
        run: async () => {
          if (netns && !prefix) return 'pod namespaces left alone: with --netns, give --pod-netns-prefix to name this node\'s pods';
          const r = await cleanupPodNamespaces(finder);
          if (r.failures.length) throw new Error(r.failures.join('; '));
          return `removed ${r.ops} pod-side objects in ${r.namespaces.length} pod namespace(s)${r.namespaces.length ? `: ${r.namespaces.map((n) => `${n.netns} (${n.removed.join(', ')})`).join('; ')}` : ''}`;
        },
      },
    ];
    let failed = 0;
    for (const area of areas) {
      try {
        console.log(`kst cleanup: ${area.name}: ${await area.run()}`);
      } catch (err) {
        failed += 1;
        console.error(`kst cleanup: ${area.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return failed ? 1 : 0;
  },
};
