// Which peers local health holds down (AdminDown, or drained at the BGP gate): every peer,
// now and future, or some by address. Releasing all also releases each one held by
// address: "healthy again" means everything.
import { canonicalAddress } from './transport.js';

export class HeldPeers {
  private everyPeer = false;
  private readonly byAddress = new Set<string>();

  /** Holds `peer` or, without one, every peer (now and future). */
  hold(peer?: string): void {
    if (peer === undefined) this.everyPeer = true;
    else this.byAddress.add(canonicalAddress(peer));
  }

  /** Releases `peer` or, without one, every peer including those held by address. */
  release(peer?: string): void {
    if (peer === undefined) {
      this.everyPeer = false;
      this.byAddress.clear();
    } else this.byAddress.delete(canonicalAddress(peer));
  }

  /** `peer` must be canonical (session keys are). */
  has(peer: string): boolean {
    return this.everyPeer || this.byAddress.has(peer);
  }

  /** Whether every peer is held (not only those held by address). */
  get all(): boolean {
    return this.everyPeer;
  }

  /** The peers held by address. */
  addresses(): IterableIterator<string> {
    return this.byAddress.values();
  }
}
