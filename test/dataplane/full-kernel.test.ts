// gre, gre-lwt and mpls end to end under a full kernel (a User-mode Linux or QEMU guest,
// test/support/guest.ts): this machine's kernel has no GRE or MPLS. One guest boot runs all
// three modes (test/dataplane/scenarios/encap.ts, compiled by `npm test`'s tsc step).
import { beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { guestSuite, runInGuest } from '../support/guest.js';

const SCENARIO = join('dist', 'test', 'dataplane', 'scenarios', 'encap.js');
const MODES = ['gre', 'gre-lwt', 'mpls'] as const;

const { backend, skip } = await guestSuite(
  'dataplane gre/gre-lwt/mpls',
  existsSync(SCENARIO) ? undefined : `${SCENARIO} is missing: run \`npm test\` (it compiles first) or \`npx tsc -p tsconfig.json\``,
);

(skip ? describe.skip : describe)(`encapsulations under a full kernel (${backend ?? 'no guest'})`, () => {
  const results = new Map<string, { ok: boolean; answered: number; peers: string[]; pods: Record<string, number>; resyncOps: number; error?: string }>();
  let output = '';

  beforeAll(async () => {
    const r = await runInGuest([process.execPath, SCENARIO, ...MODES], { timeoutMs: 420_000, modules: ['bridge', 'xt_comment', 'xt_HMARK'] });
    output = r.output;
    for (const m of output.matchAll(/^RESULT (\S+) (.*)$/gm)) results.set(m[1]!, JSON.parse(m[2]!));
    console.log(`${r.backend} guest dataplane scenarios: boot ${r.bootMs} ms, total ${r.elapsedMs} ms, exit ${r.code}`);
  }, 440_000);

  for (const mode of MODES) {
    test(`${mode}: flows reach both pods with the client address, second converge is a no-op`, () => {
      const r = results.get(mode);
      if (!r) throw new Error(`no result for ${mode}; guest output:\n${output}`);
      if (!r.ok) throw new Error(`${mode} failed: ${JSON.stringify(r)}; guest output:\n${output}`);
      expect(r.answered).toBe(100);
      expect(r.peers).toEqual(['192.0.2.100']);
      expect(Object.keys(r.pods).sort()).toEqual(['pod0', 'pod1']);
      expect(r.resyncOps).toBe(0);
    });
  }
});
