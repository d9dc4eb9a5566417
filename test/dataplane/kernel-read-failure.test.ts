// A failed read of the kernel fails that read, never the agent: a reading `ip` killed at its
// timeout while the other reads were still running was an unhandled rejection, and Node
// ended the agent (seen in the container-mode lab on a machine at load 50). Run in a child
// process, where an unhandled rejection is what ends Node, as in the agent.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../src/lab/paths.js';

const kernelJs = join(repoRoot(), 'dist/src/dataplane/kernel.js');
const systemJs = join(repoRoot(), 'dist/src/system/index.js');

// `ip link show` fails at once; the nexthop and route reads answer 200 ms later.
const script = `
import { Kernel } from ${JSON.stringify(kernelJs)};
import { CommandError } from ${JSON.stringify(systemJs)};
const later = (stdout) => new Promise((r) => setTimeout(() => r({ code: 0, stdout, stderr: '' }), 200));
const run = async (file, args) => {
  const argv = [file, ...args];
  if (args.includes('link')) throw new CommandError(argv, { code: 128, stdout: '', stderr: 'killed by SIGKILL' });
  if (args.includes('nexthop') || args.includes('route')) return later('[]');
  return { code: 0, stdout: '[]', stderr: '' };
};
try {
  await new Kernel(undefined, run).read(10000);
  console.log('read succeeded');
} catch (err) {
  await new Promise((r) => setTimeout(r, 300));
  console.log('read failed: ' + err.message);
}
`;

describe('Kernel.read when one read fails while others run', () => {
  it('rejects the read and the process lives on', () => {
    if (!existsSync(kernelJs)) throw new Error(`${kernelJs} missing: run \`npm run build\` first (npm test does)`);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
    expect({ code: r.status, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.trim()).toBe('read failed: ip -json -details link show exited 128: killed by SIGKILL');
  });
});
