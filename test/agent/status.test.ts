// The agent's /status report: the flow-hash backend chosen at start rides along, and
// passes the wire schema that `kst status` checks.
import { describe, expect, it } from '@jest/globals';
import { buildStatusReport } from '../../src/agent/index.js';
import type { Agent } from '../../src/agent/agent.js';
import { parseStatusReport } from '../../src/observe/index.js';

// buildStatusReport reads only these two from the agent.
const idleAgent = { current: () => undefined, reconcileReports: () => [] } as unknown as Agent;

describe('buildStatusReport', () => {
  it('reports the flow-hash backend and its reason', async () => {
    const flowHash = { backend: 'iptables-legacy', reason: 'auto: nftables cannot hash flows on this node (nft exited 1); iptables-legacy HMARK works' } as const;
    const report = await buildStatusReport({ nodeName: 'tunnel-1', agent: idleAgent, flowHash });
    expect(report.flowHash).toEqual(flowHash);
    expect(parseStatusReport(JSON.parse(JSON.stringify(report)))).toEqual(report);
  });

  it('leaves flowHash out when it was not given', async () => {
    const report = await buildStatusReport({ nodeName: 'serving-1', agent: idleAgent });
    expect(Object.keys(report)).not.toContain('flowHash');
    expect(report).toEqual({ node: 'serving-1', vips: [], bgpPeers: [], bfdSessions: [], reconcile: [] });
  });
});
