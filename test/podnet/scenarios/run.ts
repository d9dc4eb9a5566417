// Runs the full-kernel pod-side scenarios in one process (one User-mode Linux boot):
//   node dist/test/podnet/scenarios/run.js gre gre-lwt mpls
// Prints `RESULT <mode> <json>` per mode and `RESULT mode-change <json>`; exits 1 if any failed.
import type { EncapMode, IpAddress } from '../../../src/model/types.js';
import { runCommand } from '../../../src/system/index.js';
import { ownedState } from '../inspect.js';
import { PodLab } from '../lab.js';
import { gre } from './gre.js';
import { greLwt } from './gre-lwt.js';
import { mpls } from './mpls.js';
import { podNetworksFor, runScenarios, settingsIn, setupFor, type ModeScenario, type ScenarioResult } from './scenario.js';

const scenarios: Record<string, ModeScenario> = { gre, 'gre-lwt': greLwt, mpls };

/** One pod taken through the modes: each change leaves exactly the new mode's objects. */
async function modeChange(lab: PodLab): Promise<ScenarioResult> {
  const pod = await lab.addPod('203.0.113.34');
  const nets = podNetworksFor(await lab.inodes());
  const vip = '203.0.113.234' as IpAddress;
  const checks: Record<string, boolean> = {};
  const details: Record<string, unknown> = {};
  const expected: Record<EncapMode, string> = {
    gre: JSON.stringify({ links: ['kst-gre'], addresses: [`kst-gre ${vip}/32`], mplsRoutes: [] }),
    'gre-lwt': JSON.stringify({ links: ['kst-gre'], addresses: [`kst-gre ${vip}/32`], mplsRoutes: [] }),
    mpls: JSON.stringify({ links: [], addresses: [`lo ${vip}/32`], mplsRoutes: ['100'] }),
    'vxlan-lwt': JSON.stringify({ links: ['kst-vxlan'], addresses: [`kst-vxlan ${vip}/32`], mplsRoutes: [] }),
  };
  try {
    // Each step changes every kind of object: link kind, link to lo:kst and MPLS route, back.
    for (const [i, mode] of (['gre', 'mpls', 'vxlan-lwt'] as EncapMode[]).entries()) {
      const r = await nets.set([setupFor({ mode, vip }, pod, 'mover')]);
      const owned = JSON.stringify(await ownedState(runCommand, pod.netns));
      details[`${i}:${mode}`] = { ops: r.ops, state: r.pods[0]?.state, owned };
      checks[`${i}:${mode}`] = r.pods[0]?.state === 'ready' && owned === expected[mode];
    }
    await nets.set([]);
    const after = await ownedState(runCommand, pod.netns);
    checks.nothingLeft = after.links.length === 0 && after.addresses.length === 0 && after.mplsRoutes.length === 0;
    const settings = await settingsIn(pod.netns, ['net/mpls/conf/eth0/input', 'net/ipv4/conf/eth0/arp_ignore']);
    details.settingsAfter = settings;
    checks.settingsRestored = settings['net/mpls/conf/eth0/input'] === '0' && settings['net/ipv4/conf/eth0/arp_ignore'] === '0';
  } catch (err) {
    details.error = String(err);
    checks.noException = false;
  } finally {
    await nets.stop();
  }
  return { ok: Object.values(checks).every(Boolean), checks, details };
}

async function main(): Promise<number> {
  const modes = process.argv.slice(2);
  const chosen = modes.map((m) => {
    const s = scenarios[m];
    if (!s) throw new Error(`unknown mode ${m}; known: ${Object.keys(scenarios).join(', ')}`);
    return s;
  });
  const lab = new PodLab();
  let failed = 0;
  try {
    let t = Date.now();
    await lab.build();
    console.log(`TIMING lab ${Date.now() - t} ms`);
    t = Date.now();
    const results = await runScenarios(lab, chosen);
    console.log(`TIMING modes ${Date.now() - t} ms`);
    for (const [mode, r] of Object.entries(results)) {
      if (!r.ok) failed += 1;
      console.log(`RESULT ${mode} ${JSON.stringify(r)}`);
    }
    t = Date.now();
    const r = await modeChange(lab);
    if (!r.ok) failed += 1;
    console.log(`TIMING mode-change ${Date.now() - t} ms`);
    console.log(`RESULT mode-change ${JSON.stringify(r)}`);
  } finally {
    await lab.destroy();
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
