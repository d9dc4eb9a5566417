// Guest-side scenario for test/agent/flow-hash-probe.test.ts, run inside a full-kernel guest as
//   node dist/test/agent/scenarios/flow-hash-probe.js
// (also runnable on the host). In a fresh namespace it runs the flow-hash choice for `auto`
// and `nftables`, checks that the probes left nothing behind, and prints one line
// `RESULT <json>`. In the guest only (KST_IN_GUEST=1) it then unloads xt_HMARK and probes
// again, so "no backend works" is seen on a real kernel too.
import { NetnsSet } from '../../../src/lab/index.js';
import { runCommand } from '../../../src/system/index.js';
import { chooseFlowHash, probeIptablesLegacy } from '../../../src/dataplane/flow-hash-probe.js';

async function main(): Promise<void> {
  const set = new NetnsSet();
  try {
    const netns = await set.create('kstfh');
    const auto = await chooseFlowHash('auto', { netns });
    const explicitNft = await chooseFlowHash('nftables', { netns });
    const nftTables = (await runCommand('nft', ['list', 'tables'], { netns, allowFailure: true })).stdout.trim();
    const xtSave = (await runCommand('iptables-legacy-save', [], { netns, allowFailure: true })).stdout;
    const out: Record<string, unknown> = { auto, explicitNft, leftovers: { nftTables, xtProbeChains: /KST-PROBE/.test(xtSave) } };
    if (process.env.KST_IN_GUEST === '1') {
      const rmmod = await runCommand('rmmod', ['xt_HMARK'], { allowFailure: true });
      out.withoutHmark = rmmod.code === 0 ? { xt: await probeIptablesLegacy({ netns }), auto: await chooseFlowHash('auto', { netns }) } : { rmmodFailed: rmmod.stderr.trim() };
    }
    console.log(`RESULT ${JSON.stringify(out)}`);
  } finally {
    await set.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
