/**
 * Binary search over sorted things: the unwinder's tables (FDEs, symbols,
 * EHABI entries, mappings) are all "the last one that starts at or below".
 *
 * @module
 */

/**
 * The index of the last of `count` items, sorted by `keyAt`, whose key is
 * at or below `value`; -1 when none is.
 *
 * @example Usage
 * ```ts
 * import { lastAtOrBelow } from "./search.ts";
 * import assert from "node:assert/strict";
 *
 * const starts = [0x1000n, 0x2000n, 0x2000n, 0x3000n];
 * const at = (value: bigint) => lastAtOrBelow(starts.length, value, (i) => starts[i]!);
 * assert.deepEqual([at(0xfffn), at(0x1000n), at(0x2fffn), at(0x9000n)], [-1, 0, 2, 3]);
 * ```
 *
 * @param count How many items there are.
 * @param value The value looked for.
 * @param keyAt The key of the item at an index.
 * @returns The index, or -1.
 */
export function lastAtOrBelow(
  count: number,
  value: bigint,
  keyAt: (index: number) => bigint,
): number {
  let low = 0;
  let high = count - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (keyAt(middle) <= value) {
      found = middle;
      low = middle + 1;
    } else high = middle - 1;
  }
  return found;
}
