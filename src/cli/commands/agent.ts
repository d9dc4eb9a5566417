import { ConfigError, loadConfig } from '../../config/index.js';
import { createLogger } from '../../observe/index.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../args.js';

const HELP = `usage: kst agent --config FILE [--kubeconfig FILE] [--set path=value]...

Runs the node agent: watches the cluster, programs this node's data plane and pod
namespaces, and announces VIPs through the gobgpd sidecar. SIGTERM withdraws the
announcements, waits bgp.withdrawGraceSeconds, and exits leaving the data path in place.
The config file is watched: a valid new version is applied live where it can be (pools,
peers, attributes), otherwise rejected with an Event; docs/configuration.md.

  --config FILE      configuration (also KST_CONFIG); see docs/configuration.md
  --kubeconfig FILE  default: in-cluster, then KUBECONFIG, then ~/.kube/config
  --set path=value   override one field (repeatable), e.g. --set bgp.asn=64513`;

export const command: Command = {
  summary: 'run the node agent (daemon)',
  async run(args) {
    const parsed = parseCommandArgs('agent', args, { config: { type: 'string' }, kubeconfig: { type: 'string' }, set: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } }, HELP);
    if ('exit' in parsed) return parsed.exit;
    const { values } = parsed;
    let config;
    // Kept for live reloads: a new version of the file is loaded with the same env and flags.
    const sources = { ...(values.config ? { file: values.config } : {}), env: process.env, set: values.set ?? [] };
    try {
      config = loadConfig({ ...sources, resolveNodeName: true });
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`kst agent: ${err.message}`);
        return 1;
      }
      throw err;
    }
    const logger = createLogger(config.logLevel);
    const { runAgent } = await import('../../agent/index.js');
    const code = await runAgent({ config, logger, sources, ...(values.kubeconfig ? { kubeconfigPath: values.kubeconfig } : {}) });
    // gRPC channels and informer sockets may linger after a graceful stop; the work is done.
    process.exit(code);
  },
};
