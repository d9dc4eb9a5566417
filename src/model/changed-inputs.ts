// What differs between two snapshot lists, by identity. The agent's snapshots come from
// kube/snapshot.ts: sorted by namespace/name, and every unchanged object is the very same
// value as in the previous snapshot. So a change of one object leaves everything before
// and after it in place, and the diff is a pointer comparison from both ends plus a look
// at the few objects in between: no per-change allocation proportional to the cluster
// (a Set of 10,000 objects per change was most of the change's cost at 10k VIPs).

export interface ChangedInputs<T> {
  readonly added: readonly T[];
  readonly removed: readonly T[];
}

const NONE: ChangedInputs<never> = { added: [], removed: [] };

/**
 * Objects of `after` that are not in `before` (by identity) and objects of `before` no
 * longer in `after`. A changed object is both: its old value removed, its new one added,
 * so callers apply removals first. Without `before`, everything is added. Correct for any
 * two lists (an object moved to another position is neither added nor removed); fast when
 * the lists share a common order, as snapshots do.
 */
export function changedInputs<T>(before: readonly T[] | undefined, after: readonly T[]): ChangedInputs<T> {
  if (before === after) return NONE;
  if (!before) return { added: after, removed: [] };
  // Common prefix and suffix: the unchanged objects around the change.
  const min = Math.min(before.length, after.length);
  let start = 0;
  while (start < min && before[start] === after[start]) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--;
    endAfter--;
  }
  if (endBefore === start && endAfter === start) return NONE;
  const added: T[] = [];
  const removed: T[] = [];
  if (endBefore - start === endAfter - start) {
    // Same length in between (updates in place, the common case): compare position by position.
    for (let i = start; i < endBefore; i++) {
      if (before[i] !== after[i]) {
        removed.push(before[i]!);
        added.push(after[i]!);
      }
    }
    // An object that only moved is in both lists: it is neither added nor removed.
    if (added.length > 1) return cancelMoved(added, removed);
    return { added, removed };
  }
  const gone = new Set(before.slice(start, endBefore));
  for (let i = start; i < endAfter; i++) if (!gone.delete(after[i]!)) added.push(after[i]!);
  return { added, removed: [...gone] };
}

function cancelMoved<T>(added: T[], removed: T[]): ChangedInputs<T> {
  const gone = new Set(removed);
  const kept = added.filter((x) => !gone.delete(x));
  return { added: kept, removed: removed.filter((x) => gone.has(x)) };
}
