// Long-lived TCP connections to the VIP for the hitless drills (`npm run bench -- flows`),
// run in the client's namespace and driven by one command per line on stdin; every
// command is answered with one JSON line on stdout:
//
//   open N LABEL   open N connections labelled LABEL; answers when each has its greeting or failed
//   mark           the event starts now: survival is judged from here
//   close POD      end the connections on POD cleanly (FIN), as clients finishing within a grace
//   closeall       end every connection
//   snapshot       every connection's figures (FlowConn)
//   quit
//
// Each connection sends one short line every 100 ms ("pod? ID:SEQ") and the echo server
// answers with its pod name, so every answer is checked against the pod that greeted the
// connection. (A moved TCP connection is normally reset by the new pod, which has no socket
// for it; a changed pod name would catch anything else.) Survival (SURVIVAL_DEFINITION):
export const SURVIVAL_DEFINITION =
  'survived = from the event until the snapshot (or until the client closed it cleanly) the connection had no reset, ' +
  'error or close by the far side, was never silent for STALL_MS or more, and got at least one answer after the event; ' +
  'every answer named the pod that greeted it';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseGreeting, POD_QUERY } from './echo-server.js';

/** Longer than TCP's first retransmissions after a 300 ms BFD failover, far shorter than a broken flow's silence. */
export const STALL_MS = 5000;
const SEND_EVERY_MS = 100;
const GREETING_TIMEOUT_MS = 3000;

export interface FlowConn {
  readonly id: number;
  readonly label: string;
  readonly pod: string | null;
  readonly localPort: number;
  /** open: talking; ended: closed cleanly by us; broken: reset, error, far-side close or no greeting. */
  readonly state: 'open' | 'ended' | 'broken';
  readonly error?: string;
  readonly sent: number;
  readonly answers: number;
  readonly answersSinceMark: number;
  /** Longest silence since the mark, counting up to now (or to the clean end). */
  readonly maxGapSinceMarkMs: number;
  /** An answer named another pod than the greeting (counted as broken too). */
  readonly changedPod: boolean;
  /** Broken after the mark (before it, the connection is not part of the event). */
  readonly brokenSinceMark: boolean;
  readonly survived: boolean;
}

interface Conn {
  id: number;
  label: string;
  sock: Socket;
  pod: string | null;
  localPort: number;
  state: 'open' | 'ended' | 'broken';
  error?: string;
  brokenAt?: number;
  endedAt?: number;
  sent: number;
  answers: number;
  answersSinceMark: number;
  lastAnswerAt: number;
  maxGapSinceMark: number;
  timer?: NodeJS.Timeout;
  buf: string;
  changedPod: boolean;
}

const conns: Conn[] = [];
let markAt = 0;
let nextId = 1;

function fail(c: Conn, why: string): void {
  if (c.state !== 'open') return;
  c.state = 'broken';
  c.error = why;
  c.brokenAt = Date.now();
  clearInterval(c.timer);
  c.sock.destroy();
}

function onAnswer(c: Conn): void {
  const now = Date.now();
  if (markAt) {
    c.maxGapSinceMark = Math.max(c.maxGapSinceMark, now - Math.max(c.lastAnswerAt, markAt));
    c.answersSinceMark++;
  }
  c.answers++;
  c.lastAnswerAt = now;
}

function openOne(host: string, port: number, label: string): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const c: Conn = { id: nextId++, label, sock, pod: null, localPort: 0, state: 'open', sent: 0, answers: 0, answersSinceMark: 0, lastAnswerAt: Date.now(), maxGapSinceMark: 0, buf: '', changedPod: false };
    conns.push(c);
    const greetTimer = setTimeout(() => {
      fail(c, `no greeting within ${GREETING_TIMEOUT_MS} ms`);
      resolve();
    }, GREETING_TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.setNoDelay(true);
    sock.on('connect', () => {
      c.localPort = sock.localPort ?? 0;
    });
    sock.on('data', (d: string) => {
      c.buf += d;
      let nl: number;
      while ((nl = c.buf.indexOf('\n')) >= 0) {
        const line = c.buf.slice(0, nl);
        c.buf = c.buf.slice(nl + 1);
        if (c.pod === null) {
          c.pod = parseGreeting(line).pod ?? '?';
          c.lastAnswerAt = Date.now();
          clearTimeout(greetTimer);
          // Spread the sends over the interval so 200 connections do not pulse together.
          setTimeout(() => {
            c.timer = setInterval(() => {
              if (c.state !== 'open') return;
              c.sent++;
              c.sock.write(`${POD_QUERY} ${c.id}:${c.sent}\n`);
            }, SEND_EVERY_MS);
          }, Math.floor(Math.random() * SEND_EVERY_MS));
          resolve();
        } else {
          const pod = parseGreeting(line).pod;
          if (pod !== c.pod) {
            c.changedPod = true;
            fail(c, `answer from pod ${pod ?? '?'} instead of ${c.pod}`);
          } else {
            onAnswer(c);
          }
        }
      }
    });
    sock.on('error', (e) => {
      clearTimeout(greetTimer);
      fail(c, e.message);
      resolve();
    });
    sock.on('close', () => {
      clearTimeout(greetTimer);
      fail(c, 'closed by the far side');
      resolve();
    });
  });
}

function figures(c: Conn, now: number): FlowConn {
  const until = c.state === 'ended' ? c.endedAt! : c.state === 'broken' ? c.brokenAt! : now;
  const gap = markAt ? Math.max(c.maxGapSinceMark, until - Math.max(c.lastAnswerAt, markAt)) : 0;
  const brokenSinceMark = c.state === 'broken' && markAt > 0 && c.brokenAt! >= markAt;
  const survived = c.state !== 'broken' && c.pod !== null && gap < STALL_MS && (!markAt || c.answersSinceMark > 0);
  return {
    id: c.id, label: c.label, pod: c.pod, localPort: c.localPort, state: c.state, ...(c.error ? { error: c.error } : {}),
    sent: c.sent, answers: c.answers, answersSinceMark: c.answersSinceMark, maxGapSinceMarkMs: gap, changedPod: c.changedPod, brokenSinceMark, survived,
  };
}

function end(c: Conn): void {
  if (c.state !== 'open') return;
  c.state = 'ended';
  c.endedAt = Date.now();
  clearInterval(c.timer);
  c.sock.removeAllListeners('close');
  c.sock.on('error', () => undefined);
  c.sock.end();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const t = args[args.indexOf('--target') + 1] ?? '';
  const i = t.lastIndexOf(':');
  const host = t.slice(0, i);
  const port = Number(t.slice(i + 1));
  if (args.indexOf('--target') < 0 || i <= 0 || !Number.isInteger(port)) throw new Error(`flow-client: --target IP:PORT is required (got "${t}")`);
  const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd = '', a1 = '', a2 = ''] = line.trim().split(/\s+/);
    if (cmd === 'open') {
      const n = Number(a1);
      if (!Number.isInteger(n) || n < 1) {
        out({ op: 'error', error: `open: N must be a positive integer, got "${a1}"` });
        continue;
      }
      const label = a2 || 'flows';
      const before = conns.length;
      // In waves, so the SYNs do not overflow the echo servers' accept queues.
      for (let k = 0; k < n; k += 50) await Promise.all(Array.from({ length: Math.min(50, n - k) }, () => openOne(host, port, label)));
      const mine = conns.slice(before);
      out({ op: 'open', label, opened: mine.filter((c) => c.state === 'open').length, failed: mine.filter((c) => c.state !== 'open').length });
    } else if (cmd === 'mark') {
      markAt = Date.now();
      for (const c of conns) {
        c.answersSinceMark = 0;
        c.maxGapSinceMark = 0;
      }
      out({ op: 'mark', at: markAt });
    } else if (cmd === 'close') {
      const mine = conns.filter((c) => c.pod === a1 && c.state === 'open');
      mine.forEach(end);
      out({ op: 'close', pod: a1, closed: mine.length });
    } else if (cmd === 'closeall') {
      conns.forEach(end);
      out({ op: 'closeall', closed: conns.length });
    } else if (cmd === 'snapshot') {
      const now = Date.now();
      out({ op: 'snapshot', at: now, markAt, conns: conns.map((c) => figures(c, now)) });
    } else if (cmd === 'quit') {
      break;
    } else {
      out({ op: 'error', error: `unknown command "${cmd}" (open, mark, close, closeall, snapshot, quit)` });
    }
  }
  for (const c of conns) {
    clearInterval(c.timer);
    c.sock.destroy();
  }
  process.exit(0);
}

if (process.argv[1]?.endsWith('flow-client.js')) {
  main().catch((err: unknown) => {
    console.error(`flow-client: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
