// Network namespaces and veth pairs for the lab and the tests. Names are unique per run
// (prefix + pid + counter) so concurrent tests never collide, and `destroy()` removes
// everything made here, also after a failure.
import { runCommand, type CommandRunner } from '../system/index.js';

let counter = 0;

/** A short unique name: Linux interface names are limited to 15 characters. */
export function uniqueName(prefix: string): string {
  counter += 1;
  const id = `${(process.pid % 46656).toString(36)}${counter.toString(36)}`;
  // NETNS_TAG (e.g. a developer's id) makes the names of concurrent users on one
  // machine recognisable; the pid and counter keep them unique.
  const tag = process.env.NETNS_TAG ?? '';
  return `${tag}${prefix}${id}`.slice(0, 15);
}

export class NetnsSet {
  private readonly made: string[] = [];

  constructor(private readonly run: CommandRunner = runCommand) {}

  /** Creates a namespace with `lo` up and forwarding on. */
  async create(prefix: string): Promise<string> {
    const name = uniqueName(prefix);
    await this.run('ip', ['netns', 'add', name]);
    this.made.push(name);
    await this.run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    await this.sysctl(name, 'net.ipv4.ip_forward', '1');
    await this.sysctl(name, 'net.ipv6.conf.all.forwarding', '1');
    return name;
  }

  async sysctl(netns: string, key: string, value: string): Promise<void> {
    await this.run('sysctl', ['-q', '-w', `${key}=${value}`], { netns });
  }

  /**
   * Connects two namespaces with a veth pair and addresses each end.
   * Returns the interface names (aIf in `a`, bIf in `b`).
   */
  async link(
    a: string,
    b: string,
    opts: { aAddrs?: readonly string[]; bAddrs?: readonly string[]; aIf?: string; bIf?: string } = {},
  ): Promise<{ aIf: string; bIf: string }> {
    const aIf = opts.aIf ?? uniqueName('va');
    const bIf = opts.bIf ?? uniqueName('vb');
    const tmp = uniqueName('vt');
    await this.run('ip', ['link', 'add', aIf, 'netns', a, 'type', 'veth', 'peer', 'name', tmp, 'netns', b]);
    await this.run('ip', ['-n', b, 'link', 'set', tmp, 'name', bIf]);
    for (const addr of opts.aAddrs ?? []) await this.run('ip', ['-n', a, 'addr', 'add', addr, 'dev', aIf, ...(addr.includes(':') ? ['nodad'] : [])]);
    for (const addr of opts.bAddrs ?? []) await this.run('ip', ['-n', b, 'addr', 'add', addr, 'dev', bIf, ...(addr.includes(':') ? ['nodad'] : [])]);
    await this.run('ip', ['-n', a, 'link', 'set', aIf, 'up']);
    await this.run('ip', ['-n', b, 'link', 'set', bIf, 'up']);
    return { aIf, bIf };
  }

  get names(): readonly string[] {
    return this.made;
  }

  /** Deletes every namespace this set made (processes inside must be stopped first). */
  async destroy(): Promise<void> {
    for (const name of this.made.splice(0).reverse()) {
      await this.run('ip', ['netns', 'del', name], { allowFailure: true });
    }
  }
}
