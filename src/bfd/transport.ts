// UDP sockets for single-hop BFD (RFC 5881): control packets go to port 3784 from a
// per-session source port in 49152-65535 with TTL / hop limit 255, and arrive on one
// receiving socket per local address. The kernel-side TTL check is in gtsm.ts, because
// Node's sockets cannot read the TTL of a received packet.
import dgram from 'node:dgram';
import { isIP } from 'node:net';

export const BFD_CONTROL_PORT = 3784;
const SOURCE_PORT_MIN = 49152;
const SOURCE_PORT_MAX = 65535;
const GTSM_TTL = 255;

export interface ReceivedDatagram {
  readonly payload: Buffer;
  readonly from: string;
  readonly fromPort: number;
  /** The local address whose socket received it. */
  readonly local: string;
}

/** Canonical text for an address, so a peer written by a user matches `rinfo.address`. */
export function canonicalAddress(addr: string): string {
  const family = isIP(addr);
  if (family === 4) return addr;
  if (family === 6) return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  throw new Error(`BFD: "${addr}" is not an IP address`);
}

function socketType(addr: string): 'udp4' | 'udp6' {
  return isIP(addr) === 6 ? 'udp6' : 'udp4';
}

function socketOptions(addr: string): dgram.SocketOptions {
  // ipv6Only keeps a udp6 socket from also matching IPv4-mapped traffic; udp4 rejects the flag.
  return socketType(addr) === 'udp6' ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' };
}

function bind(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

/** The socket on `local`:3784 that receives every session's packets for that address. */
export class ControlReceiver {
  private constructor(
    readonly local: string,
    private readonly socket: dgram.Socket,
  ) {}

  static async open(local: string, onDatagram: (d: ReceivedDatagram) => void, onError: (err: Error) => void): Promise<ControlReceiver> {
    const socket = dgram.createSocket(socketOptions(local));
    try {
      await bind(socket, local, BFD_CONTROL_PORT);
    } catch (err) {
      socket.close();
      throw new Error(`BFD: cannot receive on ${local} port ${BFD_CONTROL_PORT}: ${(err as Error).message}`, { cause: err });
    }
    socket.on('message', (payload, rinfo) => onDatagram({ payload, from: rinfo.address, fromPort: rinfo.port, local }));
    socket.on('error', onError);
    return new ControlReceiver(local, socket);
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }
}

/** One session's sending socket: a fixed source port for the session's lifetime (RFC 5881 4). */
export class ControlSender {
  private constructor(
    readonly local: string,
    readonly peer: string,
    readonly sourcePort: number,
    private readonly socket: dgram.Socket,
  ) {}

  static async open(local: string, peer: string, random: () => number = Math.random, onError: (err: Error) => void = () => undefined): Promise<ControlSender> {
    if (socketType(local) !== socketType(peer)) throw new Error(`BFD: local ${local} and peer ${peer} are not the same address family`);
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = SOURCE_PORT_MIN + Math.floor(random() * (SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1));
      const socket = dgram.createSocket(socketOptions(local));
      try {
        await bind(socket, local, port);
      } catch (err) {
        socket.close();
        lastError = err as Error;
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        break;
      }
      // setTTL sets IP_TTL on udp4 and IPV6_UNICAST_HOPS on udp6 sockets (libuv uv_udp_set_ttl).
      socket.setTTL(GTSM_TTL);
      socket.on('error', onError);
      // Packets from the peer arrive on the 3784 receiver; anything sent to this port is ignored.
      socket.on('message', () => undefined);
      return new ControlSender(local, peer, port, socket);
    }
    throw new Error(`BFD: cannot open a source port on ${local} for peer ${peer}: ${lastError?.message ?? 'no free port'}`);
  }

  private pending = 0;
  private closing = false;

  send(payload: Buffer, onError: (err: Error) => void): void {
    if (this.closing) return;
    this.pending += 1;
    this.socket.send(payload, BFD_CONTROL_PORT, this.peer, (err) => {
      this.pending -= 1;
      if (err) onError(err);
      if (this.closing && this.pending === 0) this.closeNow();
    });
  }

  /** Closes once queued datagrams (a last AdminDown) have left. */
  close(): void {
    this.closing = true;
    if (this.pending === 0) this.closeNow();
  }

  private closeNow(): void {
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }
}
