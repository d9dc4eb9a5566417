// The composition root's start and stop: order, guards, deadlines, names in the log.
import { startAll, stopAll, type Component } from '../../src/system/index.js';
import type { Logger } from '../../src/observe/index.js';

function recorder() {
  const lines: string[] = [];
  const log = { debug: () => undefined, info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`), child: () => log } as unknown as Logger;
  return { lines, log };
}

describe('lifecycle', () => {
  it('starts in order, stops in reverse; a failing and a hanging stop do not keep the others running', async () => {
    const { lines, log } = recorder();
    const ran: string[] = [];
    const comp = (name: string, stop?: () => Promise<void>): Component => ({ name, start: () => void ran.push(`start ${name}`), stop: stop ?? (async () => void ran.push(`stop ${name}`)) });
    const list = [
      comp('server'),
      comp('dataplane', async () => { throw new Error('kernel gone'); }),
      { ...comp('speaker', () => new Promise<void>(() => undefined)), stopDeadlineMs: 50 },
      comp('watcher'),
    ];
    await startAll(list, log);
    const outcomes = await stopAll(list, log);
    expect(ran).toEqual(['start server', 'start dataplane', 'start speaker', 'start watcher', 'stop watcher', 'stop server']);
    expect(outcomes.map((o) => [o.name, o.ok])).toEqual([['watcher', true], ['speaker', false], ['dataplane', false], ['server', true]]);
    expect(lines).toContain('error stopping speaker failed: did not stop within 50 ms; going on without it');
    expect(lines).toContain('error stopping dataplane failed: kernel gone');
    expect(lines).toContain('info stopped server');
  });

  it('a component that cannot start stops the ones already started and names itself', async () => {
    const { log } = recorder();
    const ran: string[] = [];
    const list: Component[] = [
      { name: 'server', start: () => void ran.push('start server'), stop: () => void ran.push('stop server') },
      { name: 'watcher', start: async () => { throw new Error('no API'); }, stop: () => void ran.push('stop watcher') },
    ];
    await expect(startAll(list, log)).rejects.toThrow('watcher: no API');
    expect(ran).toEqual(['start server', 'stop server']);
  });
});
