// A serving node as a CNI builds it, in namespaces: a "node" namespace with one veth per
// "pod" namespace (pod IP /32 on the pod's eth0, a /32 route to it on the node side, the
// pod's default route via a gateway address on the node's end), a "tunnel" namespace in
// front of the node and a "client" behind the tunnel. The tunnel side is built by hand
// the way the data plane does it (src/dataplane/drivers/*.ts). Used by the jest tests and
// by the full-kernel scenarios (compiled, run inside User-mode Linux).
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { VXLAN_GATEWAY, VXLAN_GATEWAY6, VXLAN_NODE_MAC, VXLAN_POD_MAC } from '../../src/dataplane/index.js';
import { NetnsSet, uniqueName } from '../../src/lab/index.js';
import { runCommand, type CommandRunner } from '../../src/system/index.js';

export const CLIENT_IP = '198.51.100.130';
export const CLIENT_IP6 = '2001:db8:4b53:c::2';
const TUNNEL_CLIENT_SIDE = '198.51.100.129';
const TUNNEL_NODE_SIDE = '198.51.100.133';
const NODE_TUNNEL_SIDE = '198.51.100.134';
/** The node's end of every pod veth carries this address (one gateway for all pods). */
const POD_GATEWAY = '192.0.2.1';
const POD_GATEWAY6 = '2001:db8:4b53:f::1';

export interface LabPod {
  readonly netns: string;
  readonly ip: string;
  readonly ip6?: string;
  /** The node's end of the pod's veth. */
  readonly nodeIf: string;
}

export class PodLab {
  readonly set: NetnsSet;
  client = '';
  tunnel = '';
  node = '';
  private readonly children: ChildProcess[] = [];
  /** Pod namespaces: made here directly (fewer programs than NetnsSet.create; no forwarding). */
  private readonly podNames: string[] = [];

  constructor(private readonly run: CommandRunner = runCommand) {
    this.set = new NetnsSet(run);
  }

  /** client -- tunnel -- node, IPv4 and IPv6. */
  async build(): Promise<void> {
    this.client = await this.set.create('kstpc');
    this.tunnel = await this.set.create('kstpt');
    this.node = await this.set.create('kstpn');
    await this.set.link(this.client, this.tunnel, { aAddrs: [`${CLIENT_IP}/30`, `${CLIENT_IP6}/64`], bAddrs: [`${TUNNEL_CLIENT_SIDE}/30`, '2001:db8:4b53:c::1/64'] });
    await this.set.link(this.tunnel, this.node, { aAddrs: [`${TUNNEL_NODE_SIDE}/30`, '2001:db8:4b53:d::1/64'], bAddrs: [`${NODE_TUNNEL_SIDE}/30`, '2001:db8:4b53:d::2/64'] });
    await this.ip(this.client, 'route add default via', TUNNEL_CLIENT_SIDE);
    await this.ip(this.client, '-6 route add default via 2001:db8:4b53:c::1');
    await this.ip(this.tunnel, 'route add 203.0.113.0/24 via', NODE_TUNNEL_SIDE);
    await this.ip(this.tunnel, '-6 route add 2001:db8:4b53:e::/64 via 2001:db8:4b53:d::2');
    await this.ip(this.node, 'route add default via', TUNNEL_NODE_SIDE);
    await this.ip(this.node, '-6 route add default via 2001:db8:4b53:d::1');
  }

  /** A pod namespace joined to the node like a point-to-point CNI (Calico-style) does it. */
  async addPod(ip: string, opts: { ip6?: string; prefix?: string; nodeRoute?: boolean } = {}): Promise<LabPod> {
    const netns = uniqueName(opts.prefix ?? 'kstpp');
    await this.run('ip', ['netns', 'add', netns]);
    this.podNames.push(netns);
    return this.wirePod(netns, ip, opts.ip6, opts.nodeRoute);
  }

  /** `nodeRoute: false` for a second pod with an IP the node already routes (a stale twin). */
  async wirePod(netns: string, ip: string, ip6?: string, nodeRoute = true): Promise<LabPod> {
    const nodeIf = uniqueName('kstph');
    await this.run('ip', ['link', 'add', 'eth0', 'netns', netns, 'type', 'veth', 'peer', 'name', nodeIf, 'netns', this.node]);
    // One batch per side: many pods are built at once on a busy machine.
    const podSide = ['link set lo up', `addr add ${ip}/32 dev eth0`, 'link set eth0 up', `route add ${POD_GATEWAY} dev eth0 scope link`, `route add default via ${POD_GATEWAY} dev eth0`];
    const nodeSide = [`link set ${nodeIf} up`, `addr add ${POD_GATEWAY}/32 dev ${nodeIf}`, ...(nodeRoute ? [`route add ${ip}/32 dev ${nodeIf}`] : [])];
    if (ip6) {
      podSide.push(`addr add ${ip6}/128 dev eth0 nodad`, `route add ${POD_GATEWAY6} dev eth0`, `route add default via ${POD_GATEWAY6} dev eth0`);
      nodeSide.push(`addr add ${POD_GATEWAY6}/128 dev ${nodeIf} nodad`, ...(nodeRoute ? [`route add ${ip6}/128 dev ${nodeIf}`] : []));
    }
    await this.run('ip', ['-n', netns, '-batch', '-'], { input: `${podSide.join('\n')}\n` });
    await this.run('ip', ['-n', this.node, '-batch', '-'], { input: `${nodeSide.join('\n')}\n` });
    return { netns, ip, ...(ip6 ? { ip6 } : {}), nodeIf };
  }

  /**
   * Tunnel side of vxlan-lwt (src/dataplane/links.ts, drivers/vxlan-lwt.ts): one external,
   * NOARP VXLAN link; routes `via VXLAN_GATEWAY onlink`, whose permanent neighbour is the
   * pods' VXLAN MAC; IPv6 VIPs by VXLAN over IPv6 to the pod's IPv6 address (`encap ip6
   * ... csum` via the IPv6 gateway, whose neighbour has the same MAC).
   */
  async tunnelVxlan(vni: number, port: number, routes: ReadonlyArray<{ vip: string; pod: string }>): Promise<void> {
    await this.ip(this.tunnel, `link add kst-vxlan address ${VXLAN_NODE_MAC} type vxlan external dstport ${port} nolearning`);
    await this.ip(this.tunnel, 'link set kst-vxlan arp off up');
    await this.ip(this.tunnel, `neigh replace ${VXLAN_GATEWAY} lladdr ${VXLAN_POD_MAC} dev kst-vxlan nud permanent`);
    await this.ip(this.tunnel, `-6 neigh replace ${VXLAN_GATEWAY6} lladdr ${VXLAN_POD_MAC} dev kst-vxlan nud permanent`);
    for (const r of routes) {
      if (r.vip.includes(':')) await this.ip(this.tunnel, `-6 route add ${r.vip}/128 via ${VXLAN_GATEWAY6} dev kst-vxlan encap ip6 id ${vni} dst ${r.pod} csum`);
      else await this.ip(this.tunnel, `route add ${r.vip}/32 via ${VXLAN_GATEWAY} dev kst-vxlan onlink encap ip id ${vni} dst ${r.pod}`);
    }
  }

  /** Tunnel side of gre: one classic GRE link per endpoint. */
  async tunnelGre(vip: string, pod: string): Promise<void> {
    await this.ip(this.tunnel, `link add kst-g1 type gre remote ${pod}`);
    await this.ip(this.tunnel, 'link set kst-g1 up');
    await this.ip(this.tunnel, `route add ${vip}/32 dev kst-g1`);
  }

  /** Tunnel side of gre-lwt: one external GRE link and `encap ip dst POD` routes. */
  async tunnelGreLwt(vip: string, pod: string): Promise<void> {
    await this.ip(this.tunnel, 'link add kst-gre type gre external');
    await this.ip(this.tunnel, 'link set kst-gre up');
    await this.ip(this.tunnel, `route add ${vip}/32 dev kst-gre encap ip dst ${pod}`);
  }

  /** mpls: the tunnel routes the VIP to the serving node, which pushes the label towards the pod. */
  async nodeMpls(vip: string, pod: LabPod, label: number): Promise<void> {
    await this.ip(this.tunnel, `route add ${vip}/32 via ${NODE_TUNNEL_SIDE}`);
    await this.ip(this.node, `route add ${vip}/32 encap mpls ${label} via inet ${pod.ip} dev ${pod.nodeIf}`);
  }

  /** Inodes of every namespace made here (NamespaceFinder's `accept`: never touch others'). */
  async inodes(extraPaths: readonly string[] = []): Promise<Set<number>> {
    const paths = [...this.set.names, ...this.podNames].map((n) => `/run/netns/${n}`).concat(extraPaths);
    const out = new Set<number>();
    for (const p of paths) {
      const st = await stat(p).catch(() => undefined); // a name the test removed on purpose
      if (st) out.add(st.ino);
    }
    return out;
  }

  /**
   * Starts UDP and TCP echo servers bound to 0.0.0.0 and :: inside a pod; each answers
   * with the source address it saw. Resolves once they listen.
   */
  async startEchoServer(netns: string, port: number): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', ECHO_SERVER, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`echo server in ${netns} did not start: ${out}`)), 15000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`echo server in ${netns} exited ${code}: ${out}`));
      });
    });
  }

  /** UDP and TCP from the client to vip:port; what each side saw. */
  async probe(vip: string, port: number, timeoutMs = 6000): Promise<ProbeResult> {
    return (await this.probeAll([vip], port, timeoutMs))[vip] ?? { error: 'no answer' };
  }

  /** `probe` for several VIPs at once, from one client program. */
  async probeAll(vips: readonly string[], port: number, timeoutMs = 6000): Promise<Record<string, ProbeResult>> {
    const res = await this.run(process.execPath, ['-e', PROBE_CLIENT, vips.join(','), String(port), String(timeoutMs)], { netns: this.client, timeoutMs: timeoutMs * 3, allowFailure: true });
    const line = res.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as Record<string, ProbeResult>;
    } catch {
      return Object.fromEntries(vips.map((v) => [v, { error: `probe printed ${JSON.stringify(res.stdout)} ${res.stderr}` }]));
    }
  }

  /** One ICMP echo from the client; the address the reply came from, or undefined. */
  async ping(vip: string): Promise<string | undefined> {
    const res = await this.run('ping', ['-c', '1', '-W', '2', vip], { netns: this.client, allowFailure: true, timeoutMs: 10000 });
    return /bytes from ([0-9a-f.:]+):/.exec(res.stdout)?.[1];
  }

  async ip(netns: string, ...words: string[]): Promise<void> {
    await this.run('ip', ['-n', netns, ...words.join(' ').split(' ')]);
  }

  /** Stops the servers (by their PIDs) and removes every namespace made here. */
  async destroy(): Promise<void> {
    for (const c of this.children.splice(0)) {
      if (c.exitCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await exited;
      }
    }
    for (const name of this.podNames.splice(0)) await this.run('ip', ['netns', 'del', name], { allowFailure: true });
    await this.set.destroy();
  }
}

export interface ProbeResult {
  readonly udp?: { readonly replyFrom: string; readonly serverSaw: string };
  readonly tcp?: { readonly serverSaw: string; readonly serverLocal: string };
  readonly error?: string;
}

const ECHO_SERVER = `
const dgram = require('node:dgram'); const net = require('node:net');
const port = Number(process.argv[1]);
let pending = 4;
const up = () => { if (--pending === 0) console.log('ready'); };
for (const [type, host] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
  const s = dgram.createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type });
  s.on('message', (m, r) => s.send(JSON.stringify({ from: r.address }), r.port, r.address));
  s.bind(port, host, up);
}
for (const host of ['0.0.0.0', '::']) {
  net.createServer((c) => c.end(JSON.stringify({ from: c.remoteAddress, local: c.localAddress })))
    .listen(host === '::' ? { port, host, ipv6Only: true } : { port, host }, up);
}
`;

// Probes every VIP given at once (one program start: dear inside a full-kernel guest).
const PROBE_CLIENT = `
const dgram = require('node:dgram'); const net = require('node:net');
const [vips, port, timeout] = [process.argv[1].split(','), Number(process.argv[2]), Number(process.argv[3])];
const out = {};
let left = vips.length;
const finish = () => { console.log(JSON.stringify(out)); process.exit(0); };
const done = () => { if (--left === 0) finish(); };
setTimeout(() => { for (const v of vips) out[v] = out[v] || { error: 'timeout' }; finish(); }, timeout);
for (const vip of vips) {
  const s = dgram.createSocket(vip.includes(':') ? 'udp6' : 'udp4');
  const send = () => s.send('probe', port, vip);
  const again = setInterval(send, 250);
  s.on('message', (m, r) => {
    clearInterval(again); s.close();
    const res = { udp: { replyFrom: r.address, serverSaw: JSON.parse(String(m)).from } };
    const c = net.connect({ host: vip, port });
    let data = '';
    c.on('data', (d) => (data += d));
    c.on('end', () => { const j = JSON.parse(data); res.tcp = { serverSaw: j.from, serverLocal: j.local }; out[vip] = res; done(); });
    c.on('error', (e) => { res.error = 'tcp: ' + e.message; out[vip] = res; done(); });
  });
  send();
}
`;
