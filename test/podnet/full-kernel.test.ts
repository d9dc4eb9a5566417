// gre, gre-lwt and mpls need modules this kernel lacks: the same PodNetworks code runs
// under a full kernel (a User-mode Linux or QEMU guest, test/support/guest.ts), all modes in
// one guest boot. Skipped with the reason printed only where no guest can start.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { guestSuite, runInGuest } from '../support/guest.js';

const SCENARIO = join('dist', 'test', 'podnet', 'scenarios', 'run.js');
const MODES = ['gre', 'gre-lwt', 'mpls'] as const;

const { backend, skip } = await guestSuite(
  'podnet gre/gre-lwt/mpls and mode changes',
  existsSync(SCENARIO) ? undefined : `${SCENARIO} is missing: run \`npm test\` (it compiles first) or \`npx tsc -p tsconfig.json\``,
);

interface Result { ok: boolean; checks: Record<string, boolean>; details: Record<string, unknown>; ms: number }

(skip ? describe.skip : describe)(`pod side of gre, gre-lwt and mpls under a full kernel (${backend ?? 'no guest'})`, () => {
  const results = new Map<string, Result>();
  let output = '';

  beforeAll(async () => {
    const r = await runInGuest([process.execPath, SCENARIO, ...MODES], { timeoutMs: 400_000 });
    output = r.output;
    for (const m of output.matchAll(/^RESULT (\S+) (.*)$/gm)) results.set(m[1]!, JSON.parse(m[2]!) as Result);
    console.log(`${r.backend} guest podnet scenarios: boot ${r.bootMs} ms, total ${r.elapsedMs} ms, exit ${r.code}\n${output.split('\n').filter((l) => l.startsWith('RESULT') || l.startsWith('TIMING')).join('\n')}`);
  }, 420_000);

  const expectOk = (name: string) => {
    const r = results.get(name);
    if (!r) throw new Error(`no result for ${name}; guest output:\n${output}`);
    if (!r.ok) throw new Error(`${name} failed: ${JSON.stringify(r.checks)}\n${JSON.stringify(r.details, null, 2)}`);
    expect(r.ok).toBe(true);
  };

  for (const mode of MODES) {
    test(`${mode}: VIP local in the pod, client source kept, answered from the VIP; idempotent; removal leaves nothing`, () => expectOk(mode));
  }
  test('mode changes leave exactly the new mode\'s objects, and removal restores the pod\'s settings', () => expectOk('mode-change'));
});
