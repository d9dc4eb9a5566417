// Graceful shutdown and maintenance (DESIGN.md "Fail static": withdraw announcements
// first, remove routes second). The routers need a moment after the withdrawal to move
// traffic to other nodes; the data plane must keep serving in-flight traffic until then.
import { silentLogger, type Logger } from '../observe/index.js';
import type { BgpSpeaker, SyncResult } from './speaker.js';

export interface WithdrawAndWaitOptions {
  /** config.bgp.withdrawGraceSeconds: how long the routers get to move traffic. */
  readonly graceSeconds: number;
  /** Stop the speaker afterwards (SIGTERM); false keeps it running (maintenance). */
  readonly stop: boolean;
  /** Upper bound for the withdrawal itself when gobgpd does not answer (default 10 s). */
  readonly withdrawTimeoutMs?: number;
  readonly logger?: Logger;
  readonly sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Withdraws every announcement, waits the grace time, then (optionally) stops the
 * speaker. Resolves when the caller may tear down the data plane. Never throws: an
 * unreachable gobgpd means its sessions are down, so the routers withdraw anyway.
 */
export async function withdrawAndWait(speaker: BgpSpeaker, opts: WithdrawAndWaitOptions): Promise<SyncResult | undefined> {
  const log = (opts.logger ?? silentLogger()).child({ component: 'bgp' });
  const sleep = opts.sleep ?? defaultSleep;
  log.info('withdrawing all announcements');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), opts.withdrawTimeoutMs ?? 10000);
  });
  const result = await Promise.race([speaker.withdrawAll(), timeout]);
  clearTimeout(timer);
  if (!result || !result.ok) log.warn(`withdrawal not confirmed by gobgpd: ${result ? result.errors.join('; ') : 'timed out'}`);
  log.info(`waiting ${opts.graceSeconds}s for the routers to move traffic`);
  await sleep(opts.graceSeconds * 1000);
  if (opts.stop) await speaker.stop();
  return result;
}
