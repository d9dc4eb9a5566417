// Patching the summary VIP by VIP gives what building it from every VIP gives.
import { expect, test } from '@jest/globals';
import fc from 'fast-check';
import { patchSummary, summarise, type SummaryInput } from '../../src/model/vip-summary.js';
import type { Announcement, Problem } from '../../src/model/index.js';

// Distinct objects per VIP and variant: the summary compares by identity, as the model's entries are.
const announcement = (i: number, v: number) => ({ vip: `a${i}.${v}` }) as unknown as Announcement;
const problem = (i: number, v: number) => ({ message: `p${i}.${v}` }) as unknown as Problem;
const entry = (i: number, bits: number): SummaryInput => ({
  announcement: bits & 1 ? announcement(i, bits) : undefined,
  problem: bits & 2 ? problem(i, bits) : undefined,
  hasLocal: (bits & 4) !== 0,
  servesLocally: (bits & 8) !== 0,
});

test('a patched summary equals one built from scratch', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 40 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 15 })), { maxLength: 30 }), (start, changes) => {
      const entries = start.map((bits, i) => entry(i, bits));
      let summary = summarise(entries);
      for (const [at, bits] of changes) {
        const i = at % entries.length;
        const before = entries[i]!;
        const after = entry(i, bits);
        const handedOut = summary.announcements;
        const copy = [...handedOut];
        entries[i] = after;
        summary = patchSummary(summary, i, before, after);
        expect(handedOut).toEqual(copy); // lists handed out never change
      }
      const fresh = summarise(entries);
      expect(summary.announcements).toEqual(fresh.announcements);
      expect(summary.announcementAt).toEqual(fresh.announcementAt);
      expect(summary.problems).toEqual(fresh.problems);
      expect(summary.withLocal).toEqual(fresh.withLocal);
      expect(summary.servingLocally).toBe(fresh.servingLocally);
    }),
  );
});
