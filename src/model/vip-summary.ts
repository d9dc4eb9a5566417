// The lists a DesiredState derives from all its VIPs (announcements, per-VIP problems, the
// VIPs with endpoints on this node), kept in VIP order. Built once from every VIP; after
// that a change to a few VIPs patches them: each list keeps, beside it, the VIP index of
// each item, so a changed VIP's item is found by binary search, not by walking 10,000 VIPs.
// Lists handed out are never mutated: a patch copies the lists it changes (a copy of an
// array of references, much cheaper than rebuilding it item by item).
import type { Announcement, Problem } from './types.js';

/** What the summary reads from one VIP's entry. */
export interface SummaryInput {
  readonly announcement: Announcement | undefined;
  readonly problem: Problem | undefined;
  /** Has endpoints on this node (its pods get set up). */
  readonly hasLocal: boolean;
  /** Its table hashes over this node's own endpoints and has a ready one (mpls): this node sends. */
  readonly servesLocally: boolean;
}

export interface VipSummary {
  readonly announcements: readonly Announcement[];
  /** VIP index of each announcement, ascending. */
  readonly announcementAt: readonly number[];
  readonly problems: readonly Problem[];
  readonly problemAt: readonly number[];
  /** Indexes of VIPs with endpoints on this node, ascending. */
  readonly withLocal: readonly number[];
  /** How many VIPs this node serves locally (mpls); > 0: it announces. */
  readonly servingLocally: number;
}

export function summarise(entries: readonly SummaryInput[]): VipSummary {
  const announcements: Announcement[] = [];
  const announcementAt: number[] = [];
  const problems: Problem[] = [];
  const problemAt: number[] = [];
  const withLocal: number[] = [];
  let servingLocally = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.announcement !== undefined) {
      announcements.push(e.announcement);
      announcementAt.push(i);
    }
    if (e.problem !== undefined) {
      problems.push(e.problem);
      problemAt.push(i);
    }
    if (e.hasLocal) withLocal.push(i);
    if (e.servesLocally) servingLocally++;
  }
  return { announcements, announcementAt, problems, problemAt, withLocal, servingLocally };
}

/** First position in ascending `at` whose value is >= i. */
function lowerBound(at: readonly number[], i: number): number {
  let lo = 0;
  let hi = at.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (at[mid]! < i) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Puts VIP i's item (or none) into copies of `items`/`at`; returns them unchanged when nothing differs. */
function patchList<T>(items: readonly T[], at: readonly number[], i: number, value: T | undefined): [readonly T[], readonly number[]] {
  const pos = lowerBound(at, i);
  const present = at[pos] === i;
  if (value === undefined && !present) return [items, at];
  if (value !== undefined && present && items[pos] === value) return [items, at];
  const newItems = items.slice();
  const newAt = at.slice();
  if (value === undefined) {
    newItems.splice(pos, 1);
    newAt.splice(pos, 1);
  } else if (present) newItems[pos] = value;
  else {
    newItems.splice(pos, 0, value);
    newAt.splice(pos, 0, i);
  }
  return [newItems, newAt];
}

/** The summary after VIP `i` changed from `before` to `after`: proportional to the lists' copies, not to the VIPs. */
export function patchSummary(s: VipSummary, i: number, before: SummaryInput, after: SummaryInput): VipSummary {
  const [announcements, announcementAt] = patchList(s.announcements, s.announcementAt, i, after.announcement);
  const [problems, problemAt] = patchList(s.problems, s.problemAt, i, after.problem);
  const [withLocal] = patchList(s.withLocal, s.withLocal, i, after.hasLocal ? i : undefined);
  const servingLocally = s.servingLocally - Number(before.servesLocally) + Number(after.servesLocally);
  return { announcements, announcementAt, problems, problemAt, withLocal, servingLocally };
}
