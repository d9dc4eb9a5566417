// `kst cleanup` on a serving node: removes the project's pod-side objects (kst-* decap
// links, lo:kst VIP addresses, our MPLS route) from every pod namespace the finder sees,
// whatever pod they were for. Only objects with the project's markers go (orphans.ts);
// settings the agent changed keep their values (their originals lived in its memory).
import { runCommand, type CommandRunner } from '../system/index.js';
import type { NamespaceFinder } from './discovery.js';
import { readPodKernelState, runIp, type NetnsHandle } from './kernel-state.js';
import { hasMarkers, orphanRemoval } from './orphans.js';
import type { SweptNamespace } from './reconcile.js';

export interface PodCleanupResult {
  readonly namespaces: readonly SweptNamespace[];
  /** Kernel operations applied. */
  readonly ops: number;
  /** One line per namespace that could not be cleaned. */
  readonly failures: readonly string[];
}

export async function cleanupPodNamespaces(finder: NamespaceFinder, run: CommandRunner = runCommand): Promise<PodCleanupResult> {
  const survey = await finder.survey();
  const namespaces: SweptNamespace[] = [];
  const failures: string[] = [];
  let ops = 0;
  for (const n of survey.namespaces.filter((x) => hasMarkers(x.links))) {
    try {
      const actual = await readPodKernelState(run, n.handle, { sysctlPaths: [], mpls: false });
      const removal = orphanRemoval(actual);
      if (removal.plan.ops === 0) continue;
      await batch(run, n.handle, ['-batch', '-'], removal.plan.ipBatch);
      await batch(run, n.handle, ['-f', 'mpls', '-batch', '-'], removal.plan.mplsBatch);
      ops += removal.plan.ops;
      namespaces.push({ netns: n.handle.path, removed: removal.removed });
    } catch (err) {
      failures.push(`${n.handle.path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { namespaces, ops, failures };
}

async function batch(run: CommandRunner, ns: NetnsHandle, args: string[], lines: readonly string[]): Promise<void> {
  if (!lines.length) return;
  const res = await runIp(run, ns, args, { input: `${lines.join('\n')}\n`, allowFailure: true, timeoutMs: 30000 });
  if (res.code !== 0) throw new Error(`ip ${args.slice(0, -2).join(' ')} -batch: ${res.stderr.trim() || `exit ${res.code}`}`);
}
