// Hand-built DesiredState values (the model that computes them is another area's work).
import type { Backend, DesiredState, EncapMode, IpAddress, Cidr, VipPlan } from '../../src/model/types.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { KernelState, RouteSpec } from '../../src/dataplane/state.js';
import { PARITY_STRIDE } from '../../src/dataplane/layout.js';
import type { PlanParams } from '../../src/dataplane/plan.js';

export interface VipFixture {
  readonly vip: string;
  readonly backends: readonly string[];
  /** Bucket -> index into backends; default: round robin over all backends. */
  readonly buckets?: readonly number[];
  readonly sourceRanges?: readonly string[];
  readonly nodes?: readonly string[];
  readonly service?: string;
}

export function roundRobin(b: number, n: number): number[] {
  return Array.from({ length: b }, (_, i) => i % n);
}

export function vipPlan(f: VipFixture, bucketCount: number): VipPlan {
  const backends: Backend[] = f.backends.map((address, i) => ({ address: address as IpAddress, nodeName: f.nodes?.[i], draining: false }));
  const name = f.service ?? `svc-${f.vip.replace(/[.:]/g, '-')}`;
  return {
    vip: f.vip as IpAddress,
    family: f.vip.includes(':') ? 6 : 4,
    service: { namespace: 'default', name, uid: `uid-${name}` },
    pool: 'test',
    table: { backends, buckets: f.buckets ?? (backends.length ? roundRobin(bucketCount, backends.length) : []), generation: 0 },
    sourceRanges: (f.sourceRanges ?? []) as Cidr[],
    announced: backends.length > 0,
    announceReason: backends.length ? 'ready endpoints' : 'no ready endpoints',
  };
}

export function desiredState(opts: { mode?: EncapMode; bucketCount?: number; hashSeed?: number; vips: readonly VipFixture[]; isTunnelNode?: boolean; node?: string }): DesiredState {
  const bucketCount = opts.bucketCount ?? 32;
  return {
    node: opts.node ?? 'tunnel-1',
    isTunnelNode: opts.isTunnelNode ?? true,
    mode: opts.mode ?? 'vxlan-lwt',
    bucketCount,
    hashSeed: opts.hashSeed ?? 0x4b535431,
    vips: [...opts.vips].sort((a, b) => (a.vip < b.vip ? -1 : 1)).map((v) => vipPlan(v, bucketCount)),
    announcements: [],
    podSetups: [],
    problems: [],
  };
}

/** `pin`: dataplane.pinEstablishedFlows; undefined = the product default (on). */
export function testConfig(overrides: { coalesceMs?: number; resyncSeconds?: number; mode?: EncapMode; pin?: boolean } = {}): Config {
  return configSchema.parse({
    encapsulation: { mode: overrides.mode ?? 'vxlan-lwt' },
    dataplane: { coalesceMs: overrides.coalesceMs ?? 0, resyncSeconds: overrides.resyncSeconds ?? 3600, ...(overrides.pin === undefined ? {} : { pinEstablishedFlows: overrides.pin }) },
  });
}

/** The plan's parameters from a config (the agent resolves the flow-hash backend first). */
export function planParams(config: Config): PlanParams {
  const { tableBase, rulePriority, pinEstablishedFlows } = config.dataplane;
  return { tableBase, rulePriority, pinEstablishedFlows };
}

/** The routes new flows of a VIP use: those of its active table parity (see pinning.ts). */
export function activeRoutes(state: KernelState, vip: string, tableBase: number): RouteSpec[] {
  const p1 = state.nft.elements.get(vip.includes(':') ? 'parity1_6' : 'parity1_4')?.has(vip) ?? false;
  return [...(state.routes.get(vip)?.values() ?? [])].filter((r) => Math.floor((r.table - tableBase) / PARITY_STRIDE) === (p1 ? 1 : 0));
}
