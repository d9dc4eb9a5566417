// `kst cleanup`: removes everything the data plane owns on this node (nft table, fwmark
// rules, per-bucket routes, kst-* tunnel links), and nothing else. The agent never does
// this on exit (fail static); this is the explicit way to take the data path down.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/index.js';
import { Kernel, cleanupKernel } from '../../dataplane/index.js';
import type { Command } from '../main.js';

const USAGE = `usage: kst cleanup [--config FILE] [--netns NAME]

Removes the data plane's kernel state on this node: the nftables table
inet kube_service_tunnel, fwmark rules and routes (protocol 245) in the
configured table range, and the data plane's kst-* links. Objects the
project does not own are never touched.

  --config FILE   agent configuration (for dataplane.tableBase); also KST_CONFIG
  --netns NAME    act inside this named network namespace instead of the node's own`;

export const command: Command = {
  summary: 'remove the data path this node programmed (nft table, rules, routes, links)',
  async run(args) {
    let values: { config?: string; netns?: string; help?: boolean };
    try {
      ({ values } = parseArgs({ args, options: { config: { type: 'string' }, netns: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
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
    try {
      const changes = await cleanupKernel(new Kernel(values.netns), tableBase);
      console.log(`kst cleanup: removed ${changes.operations} data-plane objects${values.netns ? ` in netns ${values.netns}` : ''}`);
      return 0;
    } catch (err) {
      console.error(`kst cleanup: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  },
};
