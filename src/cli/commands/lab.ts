// `kst lab up|down|status|demo`: a whole cluster's network in namespaces on this machine
// (docs/lab.md). One lab per prefix; the prefix defaults to "kstlab-" and can be changed
// with --prefix or KST_LAB_PREFIX (the tests use their own so they never meet a human's lab).
import { DEFAULT_PREFIX, DRILL_KEYS, LabError, labDemo, labDown, labDrill, labStatus, labUp, parseOverride, renderDemo, renderDrill, renderStatus, TOPOLOGY_KINDS, validatePrefix } from '../../lab/control.js';
import type { ConfigOverride, DrillKey, TopologyKind } from '../../lab/control.js';
import { RUNTIMES, type LabRuntime } from '../../lab/runtime/container-lab.js';
import type { Command } from '../command.js';

const USAGE = `usage: kst lab <up|down|status|demo|drill> [options]

  up [--no-agents] [--set KEY=VALUE]... [--runtime process|podman] [--topology default|racks]
                     build the lab (root); with the agents it returns once the router has every VIP over
                     every tunnel node (exit 3: agents could not start, 4: VIPs not routed within 60 s);
                     without agents: the network, router, API server and pods only;
                     --set changes the agents' generated config, e.g. --set storedTables=false
                     --set dataplane.pinEstablishedFlows=false
                     --runtime podman: agents, gobgpd and echo pods as containers of the image
                     (bash scripts/build-image.sh), from deploy/base's DaemonSet (docs/lab.md)
                     --topology racks: two racks, each with its own top-of-rack router and ASN (FRR and
                     BIRD 2), a tunnel node and a worker, and a spine with ECMP over them (docs/lab.md);
                     demo, drill, status and down read the topology from the running lab
  down               remove everything the lab made, also after a crash
  status [--json]    hosts, roles, namespaces, addresses, VIPs, router vty directory, API server, PIDs
  demo [--json]      show the VIP answering, source preserved, load spread, failover, draining
  drill [--json] [--api-outage-seconds N] [--only gobgpd,agent,apiserver,api-blackhole,flap]
                     resilience drill while the client streams: kill -9 gobgpd, kill -9 an agent,
                     stop the API server (default 30 s), black-hole one tunnel node's path to it
                     (as long), flap a link; gaps and kernel state after each

options:
  --prefix P         namespace prefix (default ${DEFAULT_PREFIX}, or env KST_LAB_PREFIX)`;

interface LabArgs {
  readonly sub: string;
  readonly prefix: string;
  readonly json: boolean;
  readonly agents: boolean;
  readonly apiOutageSeconds: number;
  readonly only?: DrillKey[];
  readonly overrides: ConfigOverride[];
  readonly runtime: LabRuntime;
  readonly topology: TopologyKind;
}

function parse(args: string[]): LabArgs | string {
  const [sub = '', ...rest] = args;
  let prefix = process.env.KST_LAB_PREFIX || DEFAULT_PREFIX;
  let json = false;
  let agents = true;
  let apiOutageSeconds = 30;
  let only: DrillKey[] | undefined;
  const overrides: ConfigOverride[] = [];
  let runtime: LabRuntime = 'process';
  let topology: TopologyKind = 'default';
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--json') json = true;
    else if (a === '--no-agents') agents = false;
    else if (a === '--prefix') prefix = rest[++i] ?? '';
    else if (a === '--runtime') {
      const r = rest[++i] ?? '';
      if (!(RUNTIMES as readonly string[]).includes(r)) return `--runtime takes ${RUNTIMES.join(' or ')}`;
      runtime = r as LabRuntime;
    }
    else if (a === '--topology') {
      const t = rest[++i] ?? '';
      if (!(TOPOLOGY_KINDS as readonly string[]).includes(t)) return `--topology takes ${TOPOLOGY_KINDS.join(' or ')}`;
      topology = t as TopologyKind;
    }
    else if (a === '--set') {
      try {
        overrides.push(parseOverride(rest[++i] ?? ''));
      } catch (err) {
        return (err as Error).message;
      }
    }
    else if (a === '--only') {
      const keys = (rest[++i] ?? '').split(',').filter(Boolean);
      const bad = keys.filter((k) => !(DRILL_KEYS as readonly string[]).includes(k));
      if (!keys.length || bad.length) return `--only takes a comma-separated list of ${DRILL_KEYS.join(', ')}${bad.length ? ` (not: ${bad.join(', ')})` : ''}`;
      only = keys as DrillKey[];
    } else if (a === '--api-outage-seconds') {
      apiOutageSeconds = Number(rest[++i]);
      if (!Number.isFinite(apiOutageSeconds) || apiOutageSeconds < 0 || apiOutageSeconds > 600) return '--api-outage-seconds must be a number of seconds between 0 and 600';
    }
    else return `unknown option "${a}"`;
  }
  if (!['up', 'down', 'status', 'demo', 'drill'].includes(sub)) return sub ? `unknown subcommand "${sub}"` : 'missing subcommand';
  try {
    validatePrefix(prefix);
  } catch (err) {
    return (err as Error).message;
  }
  if (overrides.length && sub !== 'up') return '--set applies to `kst lab up` only';
  if (runtime !== 'process' && sub !== 'up') return '--runtime applies to `kst lab up` only (the others read it from the running lab)';
  if (topology !== 'default' && sub !== 'up') return '--topology applies to `kst lab up` only (the others read it from the running lab)';
  return { sub, prefix, json, agents, apiOutageSeconds, overrides, runtime, topology, ...(only ? { only } : {}) };
}

const say = (line: string): void => console.log(`lab: ${line}`);

export const command: Command = {
  summary: 'a whole cluster\'s network in namespaces on this machine: up, down, status, demo, drill',
  async run(args) {
    if (args.includes('--help') || args.includes('-h')) {
      console.log(USAGE);
      return 0;
    }
    const parsed = parse(args);
    if (typeof parsed === 'string') {
      console.error(`kst lab: ${parsed}\n\n${USAGE}`);
      return 2;
    }
    const { sub, prefix, json } = parsed;
    if (sub !== 'status' && typeof process.getuid === 'function' && process.getuid() !== 0) {
      console.error(`kst lab ${sub}: needs root (network namespaces, links, FRR); run it with sudo`);
      return 1;
    }
    try {
      switch (sub) {
        case 'up': {
          const t0 = Date.now();
          const r = await labUp({ prefix, agents: parsed.agents, configOverrides: parsed.overrides, runtime: parsed.runtime, topology: parsed.topology, progress: say });
          // Measured when labUp returns: with the agents, that is once the VIPs are routed (or the wait gave up).
          const took = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
          if (!r.alreadyUp) {
            say(r.routed && !r.routed.ok
              ? `built in ${took}, but the VIPs are not routed over every tunnel node yet (see above); \`kst lab status\` shows the sessions`
              : `up in ${took}${r.routed ? `, VIPs routed over every ${parsed.topology === 'racks' ? 'rack' : 'tunnel node'}` : ''}; \`kst lab status\` shows it, \`kst lab demo\` exercises it`);
          }
          // A lab without its agents is usable (--no-agents), but say so in the exit code when they were asked for.
          if (parsed.agents && !r.state.agents.running) return 3;
          return r.routed && !r.routed.ok ? 4 : 0;
        }
        case 'down': {
          const r = await labDown(prefix, say);
          say(r.namespaces.length || r.processes ? 'down' : 'nothing to remove');
          return 0;
        }
        case 'status': {
          const s = await labStatus(prefix);
          console.log(json ? JSON.stringify(s, null, 2) : renderStatus(s));
          return s.up ? 0 : 1;
        }
        case 'demo': {
          const report = await labDemo({ prefix, progress: json ? () => undefined : say });
          console.log(json ? JSON.stringify(report, null, 2) : renderDemo(report));
          return report.steps.every((s) => s.ok) ? 0 : 1;
        }
        case 'drill': {
          const report = await labDrill({ prefix, apiOutageSeconds: parsed.apiOutageSeconds, ...(parsed.only ? { only: parsed.only } : {}), progress: json ? () => undefined : say });
          console.log(json ? JSON.stringify(report, null, 2) : renderDrill(report));
          return report.drills.every((d) => d.ok) ? 0 : 1;
        }
      }
    } catch (err) {
      console.error(`kst lab ${sub}: ${err instanceof LabError ? err.message : err instanceof Error ? err.stack ?? err.message : String(err)}`);
      return 1;
    }
    return 2;
  },
};
