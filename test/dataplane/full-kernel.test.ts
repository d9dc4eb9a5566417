// gre, gre-lwt and mpls end to end under a full kernel (a User-mode Linux or QEMU guest,
// test/support/guest.ts): this machine's kernel has no GRE or MPLS. One guest boot runs all
// the cases (test/dataplane/scenarios/encap.ts, compiled by `npm test`'s tsc step), IPv4
// VIPs in the three modes and IPv6 VIPs over SRv6 in the two gre modes. Those need seg6,
// which Debian's UML kernel lacks and its full kernel (QEMU) has: the scenario probes the
// guest's kernel, and a case it could not run is a visible skip with the kernel's answer
// (its own row in the what-ran-where table), never a pass. The guest runs while this file
// loads, so that the skip is known when the tests are declared.
import { describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { guestSuite, runInGuest } from '../support/guest.js';
import { recordKernelSuite } from '../support/kernel-report.js';
import { CLIENT4, CLIENT6, pod6 } from './topology.js';

const SCENARIO = join('dist', 'test', 'dataplane', 'scenarios', 'encap.js');
const IPV4_CASES = ['gre', 'gre-lwt', 'mpls'] as const;
const IPV6_CASES = ['gre-lwt-ipv6', 'gre-ipv6'] as const;
const SEG6_SUITE = 'dataplane IPv6 VIPs over seg6 (gre, gre-lwt)';

interface CaseResult {
  ok: boolean;
  answered: number;
  peers: string[];
  pods: Record<string, number>;
  resyncOps: number;
  error?: string;
  skipped?: string;
  segments?: string[];
  podsReady?: boolean;
  podResyncOps?: number;
  ms?: number;
}

const { backend, skip } = await guestSuite(
  'dataplane gre/gre-lwt/mpls',
  existsSync(SCENARIO) ? undefined : `${SCENARIO} is missing: run \`npm test\` (it compiles first) or \`npx tsc -p tsconfig.json\``,
);

const results = new Map<string, CaseResult>();
let output = '';
if (!skip) {
  // ip6_gre: the gre case's pods are IPv6-only, so their kst-gre is an ip6gre link.
  const r = await runInGuest([process.execPath, SCENARIO, ...IPV4_CASES, ...IPV6_CASES], { timeoutMs: 480_000, modules: ['bridge', 'xt_comment', 'xt_HMARK', 'xt_mark', 'ip6_gre'] });
  output = r.output;
  for (const m of output.matchAll(/^RESULT (\S+) (.*)$/gm)) results.set(m[1]!, JSON.parse(m[2]!) as CaseResult);
  const perCase = [...results].map(([name, c]) => `${name} ${c.ms ?? '?'} ms`).join(', ');
  console.log(`${r.backend} guest dataplane scenarios: boot ${r.bootMs} ms, total ${r.elapsedMs} ms, exit ${r.code} (${perCase})`);
}

// Every IPv6 case probes the same kernel, so they skip together or not at all.
const seg6Skip = skip ?? IPV6_CASES.map((c) => results.get(c)?.skipped).find(Boolean);
if (!skip) {
  if (seg6Skip) {
    console.warn(`SKIPPED ${SEG6_SUITE} (${backend} guest): ${seg6Skip}`);
    recordKernelSuite({ suite: SEG6_SUITE, kernel: backend!, outcome: 'skipped', why: seg6Skip });
  } else {
    console.log(`RAN ${SEG6_SUITE} in the ${backend} guest (its kernel has seg6)`);
    recordKernelSuite({ suite: SEG6_SUITE, kernel: backend! });
  }
}

function resultOf(name: string): CaseResult {
  const r = results.get(name);
  if (!r) throw new Error(`no result for ${name}; guest output:\n${output}`);
  if (!r.ok) throw new Error(`${name} failed: ${JSON.stringify(r)}; guest output:\n${output}`);
  return r;
}

(skip ? describe.skip : describe)(`encapsulations under a full kernel (${backend ?? 'no guest'})`, () => {
  for (const mode of IPV4_CASES) {
    test(`${mode}: flows reach both pods with the client address, second converge is a no-op`, () => {
      const r = resultOf(mode);
      expect(r.answered).toBe(100);
      expect(r.peers).toEqual([CLIENT4]);
      expect(Object.keys(r.pods).sort()).toEqual(['pod0', 'pod1']);
      expect(r.resyncOps).toBe(0);
    });
  }

  for (const name of IPV6_CASES) {
    const title = `${name}: IPv6 VIP over SRv6 reaches both pods (podnet's own pod side) with the client's IPv6 address, second converge is a no-op`;
    (seg6Skip ? test.skip : test)(seg6Skip ? `${title} [skipped: ${seg6Skip}]` : title, () => {
      const r = resultOf(name);
      expect(r.skipped).toBeUndefined();
      expect(r.podsReady).toBe(true);
      expect(r.podResyncOps).toBe(0);
      // The tunnel node's kernel holds one SRv6 segment per pod: the pod's IPv6 address.
      expect(r.segments).toEqual([pod6(0), pod6(1)].sort());
      expect(r.answered).toBe(100);
      expect(r.peers).toEqual([CLIENT6]);
      expect(Object.keys(r.pods).sort()).toEqual(['pod0', 'pod1']);
      expect(r.resyncOps).toBe(0);
    });
  }
});
