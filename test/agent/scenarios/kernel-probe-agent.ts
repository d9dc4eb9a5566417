// Scenario for test/agent/kernel-probe.test.ts, run inside a network namespace of the test's
// own (`ip netns exec NS node dist/test/agent/scenarios/kernel-probe-agent.js MODE`), so
// that the real agent (runAgent: probes, data plane, podnet, status server) touches only that
// namespace. An in-repo API server on the namespace's loopback holds a tunnel node (this one)
// and a Service with ready endpoints; the agent runs with encapsulation.mode MODE until its
// status shows the VIP, then stops by SIGTERM. Prints one line `RESULT <json>`: the status
// report, the `kst status` text, the Events, and the agent's exit code.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent } from '../../../src/agent/index.js';
import { fetchStatus, renderStatus } from '../../../src/cli/commands/status.js';
import { configSchema } from '../../../src/config/index.js';
import { LabApiServer, waitFor } from '../../../src/lab/index.js';
import { silentLogger, type StatusReport } from '../../../src/observe/index.js';
import { endpointSlice, node, service } from '../../kube/fixtures.js';

const NODE = 'node-a'; // the fixtures' endpoints live on node-a
const VIP = '203.0.113.40';
const LISTEN = '127.0.0.1:19742';

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'gre-lwt';
  const dir = mkdtempSync(join(tmpdir(), 'kst-h2-kernel-'));
  const server = new LabApiServer();
  await server.start();
  try {
    server.apply(node(NODE, { labels: { node: 'tunnel' } }));
    server.apply(service('web', { vip: VIP }));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12']));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, server.kubeconfigYaml());
    const config = configSchema.parse({
      nodeName: NODE,
      encapsulation: { mode },
      bgp: { enabled: false },
      api: { listen: LISTEN },
      pools: [{ name: 'public', cidrs: ['203.0.113.0/25'], namespaces: ['*'] }],
    });
    const started = Date.now();
    const exit = runAgent({ config, logger: silentLogger(), kubeconfigPath: kubeconfig, leaseNamespace: 'default' });
    let report: StatusReport | undefined;
    await waitFor(async () => {
      try {
        report = await fetchStatus(LISTEN, 2000);
      } catch {
        return false;
      }
      return report.vips.some((v) => v.vip === VIP) && report.reconcile.some((r) => r.area === 'dataplane');
    }, 60_000);
    // Long enough for a failing data plane to have retried (backoff starts at 500 ms).
    await new Promise((r) => setTimeout(r, 2500));
    report = await fetchStatus(LISTEN, 2000);
    const events = server.list('v1', 'Event').map((e) => ({
      reason: (e as { reason?: string }).reason,
      kind: (e as { involvedObject?: { kind?: string } }).involvedObject?.kind,
      message: (e as { message?: string }).message,
      count: (e as { count?: number }).count,
    }));
    process.kill(process.pid, 'SIGTERM');
    const code = await exit;
    console.log(`RESULT ${JSON.stringify({ mode, report, text: renderStatus(report), events, code, startedMs: Date.now() - started })}`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
