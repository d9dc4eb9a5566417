// `kst validate`: offline check of a config file and of Kubernetes YAML, printing every
// problem with its object and field path. Exit 0 when clean, 1 when not, 2 on usage errors.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigError, loadConfig, type Config } from '../../config/index.js';
import { convertObjects, describeIssue, type ConvertedObjects } from '../../kube/objects.js';
import { computeDesiredState, sortProblems, type ClusterSnapshot, type Problem } from '../../model/index.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../args.js';
import { hostname } from 'node:os';
import { probeAndAssess } from '../../agent/kernel-report.js';
import { probeFlowHash } from '../../dataplane/flow-hash-probe.js';
import type { KernelProbeOptions } from '../../agent/kernel-probe.js';

export interface ReadObjects extends ConvertedObjects {
  readonly files: readonly string[];
  /** YAML syntax errors: "file: line 3 column 5: ..." */
  readonly fileErrors: readonly string[];
}

function listFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .map((d) => d.name)
    .sort()
    .flatMap((name) => {
      const full = join(path, name);
      if (statSync(full).isDirectory()) return listFiles(full);
      return /\.(ya?ml|json)$/.test(name) ? [full] : [];
    });
}

/** Reads YAML/JSON files (multi-document, `List` kinds, directories recursively) and converts them. */
export function readObjects(paths: readonly string[]): ReadObjects {
  const files = paths.flatMap(listFiles);
  const docs: unknown[] = [];
  const fileErrors: string[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'), { prettyErrors: true })) {
      if (doc.errors.length > 0) {
        for (const e of doc.errors) fileErrors.push(`${file}: ${e.linePos ? `line ${e.linePos[0].line} column ${e.linePos[0].col}: ` : ''}${e.message.split('\n')[0]!.replace(/:$/, '')}`);
        continue;
      }
      docs.push(doc.toJS());
    }
  }
  return { ...convertObjects(docs), files, fileErrors };
}

/** The snapshot one node sees: every cluster object, and the Pods scheduled on it. */
export function snapshotFor(objects: ConvertedObjects, nodeName: string): ClusterSnapshot {
  return {
    services: objects.services,
    endpointSlices: objects.endpointSlices,
    nodes: objects.nodes,
    localPods: objects.pods.filter((p) => p.nodeName === nodeName),
  };
}

/** Model problems as every node would report them (pods are per node), merged. */
export function modelProblems(config: Config, objects: ConvertedObjects): Problem[] {
  const nodeNames = new Set<string>(objects.nodes.map((n) => n.name));
  for (const p of objects.pods) if (p.nodeName) nodeNames.add(p.nodeName);
  if (nodeNames.size === 0) nodeNames.add(config.nodeName ?? '(none)');
  return sortProblems([...nodeNames].sort().flatMap((n) => computeDesiredState(config, snapshotFor(objects, n), n).problems));
}

export function describeProblem(p: Problem): string {
  return `${p.ref.kind} ${p.ref.namespace ? `${p.ref.namespace}/` : ''}${p.ref.name}: ${p.message} [${p.reason}]`;
}

/** Loads the config for an offline command; ConfigError issues become lines. */
export function loadOfflineConfig(file: string, set: readonly string[]): { config?: Config; errors: string[] } {
  try {
    return { config: loadConfig({ file, set }), errors: [] };
  } catch (err) {
    if (err instanceof ConfigError) return { errors: err.issues.map((i) => `${file}: ${i.path || '(file)'}: ${i.message}`) };
    return { errors: [`${file}: ${(err as Error).message}`] };
  }
}

/** Probes this machine's kernel for the configuration: problem lines (one per missing need) and a summary. */
export async function nodeProbe(config: Config, opts: KernelProbeOptions = {}): Promise<{ lines: string[]; summary: string }> {
  // The flow-hash probe as the agent runs it (auto: HMARK only where nftables fails); its
  // verdict is among the needs (dataplane.flowHash), so only the results are used.
  const { results } = await probeFlowHash(config.dataplane.flowHash, opts.run ? { run: opts.run } : {});
  const a = await probeAndAssess(config, results, opts);
  const lines = a.report.missing.map((m) => `node kernel: ${m.role === 'tunnel' ? 'as a tunnel node' : 'for VIPs in pods'}: ${m.message}`);
  const f = a.report.features;
  const list = (state: string) => f.filter((x) => x.state === state).map((x) => x.feature).join(' ') || '-';
  const found = `present: ${list('present')}; absent: ${list('absent')}${f.some((x) => x.state === 'unknown') ? `; could not probe: ${list('unknown')}` : ''}`;
  const mode = config.encapsulation.mode;
  const verdict = lines.length === 0 ? `ok: encapsulation.mode ${mode} can work here` : `${lines.length} problem(s): encapsulation.mode ${mode} cannot fully work here`;
  return { lines, summary: `node kernel (${hostname()}): ${found}\nnode kernel: ${verdict}` };
}

const HELP = `usage: kst validate --config FILE [--objects DIR|FILE]... [--set path=value]... [--node-probe]

Checks a configuration file and, optionally, Kubernetes objects (YAML or JSON files,
multi-document, List kinds, directories read recursively) without a cluster:
Services, EndpointSlices, Nodes and Pods are checked against the configuration the
way the agent would (addresses, pools, namespaces, conflicts, host-network pods).
Other kinds are skipped. Prints every problem with its object and field path.

  --config FILE      agent configuration (YAML)
  --objects PATH     object file or directory; repeatable
  --set path=value   override a configuration field, as for the agent; repeatable
  --node-probe       also probe THIS machine's kernel, as the agent does at start, and
                     say whether the configuration can work here: which features its
                     mode needs as a tunnel node and for VIPs in pods (e.g. gre-lwt:
                     GRE external and nexthop objects, seg6 for IPv6 VIPs; mpls: MPLS
                     routing and encap mpls), which are present, and what to turn on.
                     Runs each check in a throwaway network namespace (unshare --net;
                     needs root or CAP_SYS_ADMIN). Run it on a node before deploying.
  -h, --help         this text

Environment variables (KST_*) are not read: the result depends on the files and flags only.

Exit status: 0 no problems, 1 problems found (with --node-probe: also when this kernel
lacks something the configuration needs), 2 usage error.`;

export const command: Command = {
  summary: 'check a config file and Kubernetes objects offline; prints every problem',
  async run(args) {
    const parsed = parseCommandArgs('validate', args, {
          config: { type: 'string' },
          objects: { type: 'string', multiple: true },
          set: { type: 'string', multiple: true },
          'node-probe': { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        }, HELP);
    if ('exit' in parsed) return parsed.exit;
    const { values } = parsed;
    if (!values.config) {
      console.error(`kst validate: --config is required\n\n${HELP}`);
      return 2;
    }
    const lines: string[] = [];
    const { config, errors } = loadOfflineConfig(values.config, values.set ?? []);
    lines.push(...errors);
    let summary = `config ${values.config}: ${errors.length === 0 ? 'ok' : `${errors.length} problem(s)`}`;
    const objectPaths = values.objects ?? [];
    if (objectPaths.length > 0) {
      let objects: ReadObjects;
      try {
        objects = readObjects(objectPaths);
      } catch (err) {
        console.error(`kst validate: ${(err as Error).message}`);
        return 2;
      }
      const before = lines.length;
      lines.push(...objects.fileErrors);
      lines.push(...objects.issues.map(describeIssue));
      // Without a valid config the model's rules cannot be applied; say so rather than guess.
      if (config) lines.push(...modelProblems(config, objects).map(describeProblem));
      const n = objects.services.length + objects.endpointSlices.length + objects.nodes.length + objects.pods.length;
      summary += `\nobjects: ${n} from ${objects.files.length} file(s) (${objects.services.length} Services, ${objects.endpointSlices.length} EndpointSlices, ${objects.nodes.length} Nodes, ${objects.pods.length} Pods; ${objects.skipped} of other kinds skipped)${config ? '' : '; model rules not checked: the config is invalid'}: ${lines.length - before === 0 ? 'ok' : `${lines.length - before} problem(s)`}`;
      summary += `\nfiles: ${objects.files.map((f) => relative(process.cwd(), f) || f).join(', ')}`;
    }
    if (values['node-probe'] && config) {
      const probed = await nodeProbe(config);
      lines.push(...probed.lines);
      summary += `\n${probed.summary}`;
    } else if (values['node-probe']) {
      summary += '\nnode probe: not run: the config is invalid';
    }
    for (const l of lines) console.log(l);
    if (lines.length > 0) console.log('');
    console.log(summary);
    return lines.length === 0 ? 0 : 1;
  },
};
