/**
 * Private: picks the cheaper of two ways to do the same work from what each
 * was measured to cost, trying the other again now and then: the page
 * cache or direct I/O (`_direct_io.ts`), whose costs swap with the
 * machine's state and its storage.
 *
 * @module
 */

/** Options for {@linkcode costChooser}. */
export interface CostChooserOptions {
  /**
   * The way used first.
   *
   * @default {0}
   */
  first?: 0 | 1;
  /**
   * Bytes of work over which a way's cost is measured.
   *
   * @default {8388608}
   */
  window?: number;
  /**
   * Bytes done the cheaper way between two tries of the other.
   *
   * @default {134217728}
   */
  retry?: number;
  /**
   * How many times cheaper the other way must measure to be taken: one
   * window's cost is noisy (a stall of the disk, a page fault), and the
   * costs that matter differ several times over.
   *
   * @default {1.5}
   */
  margin?: number;
  /**
   * A try of the other way ends after a quarter window when it costs this
   * many times the way kept, or more: a way that loses by far is known to
   * before its window is through. Where the page cache's new pages are dear
   * (after heavy writing on this project's VMs), a try of it cost 3.4 ms a
   * MiB against 0.85 for direct writes, 8 MiB at a time, every 128 MiB of
   * the spill file.
   *
   * @default {2}
   */
  abandon?: number;
}

/** The way to use next, and where each piece of work's cost is recorded. */
export interface CostChooser {
  /** The way to use next. */
  readonly way: 0 | 1;
  /**
   * Each way's last measured cost, in milliseconds a byte; undefined until
   * it was measured over a window.
   */
  readonly costs: readonly [number | undefined, number | undefined];
  /** Records that `bytes` took `ms` done the current way. */
  record(ms: number, bytes: number): void;
}

/**
 * Measures the first way over a window, then the other, then keeps the
 * cheaper (the one in use unless the other is `margin` times cheaper),
 * trying the other for a window after every `retry` bytes; a try that
 * costs `abandon` times the kept way ends after a quarter window.
 *
 * @example Usage
 * ```ts
 * import { costChooser } from "./_cost_chooser.ts";
 * import assert from "node:assert/strict";
 *
 * const chooser = costChooser({ window: 100, retry: 1000 });
 * assert.equal(chooser.way, 0);
 * chooser.record(50, 100); // way 0: 0.5 ms a byte
 * assert.equal(chooser.way, 1); // the other is tried
 * chooser.record(10, 100); // way 1: 0.1 ms a byte
 * assert.equal(chooser.way, 1); // and kept: 1.5 times cheaper, or more
 * assert.deepEqual(chooser.costs, [0.5, 0.1]);
 *
 * const close = costChooser({ window: 100 });
 * close.record(50, 100); // way 0: 0.5 ms a byte
 * close.record(40, 100); // way 1: 0.4 ms a byte, not cheaper enough
 * assert.equal(close.way, 0);
 *
 * const far = costChooser({ window: 100 });
 * far.record(10, 100); // way 0: 0.1 ms a byte
 * far.record(10, 25); // way 1: 0.4 ms a byte over a quarter window
 * assert.equal(far.way, 0); // the try ends there
 * assert.deepEqual(far.costs, [0.1, 0.4]);
 * ```
 *
 * @param options The first way, the window and how often to try again.
 * @returns The chooser.
 */
export function costChooser(options: CostChooserOptions = {}): CostChooser {
  const {
    first = 0,
    window = 8 << 20,
    retry = 128 << 20,
    margin = 1.5,
    abandon = 2,
  } = options;
  const costs: [number | undefined, number | undefined] = [
    undefined,
    undefined,
  ];
  let way: 0 | 1 = first;
  let ms = 0;
  let bytes = 0;
  /** Bytes done the cheaper way since the other was last tried. */
  let since = 0;
  let trying = false;
  return {
    get way() {
      return way;
    },
    get costs() {
      return costs;
    },
    record(spent, done) {
      ms += spent;
      bytes += done;
      if (trying && bytes >= window / 4) {
        // While trying, the way kept is the other one: measured already.
        const kept = way === 0 ? 1 : 0;
        if (ms / bytes >= costs[kept]! * abandon) {
          costs[way] = ms / bytes;
          ms = bytes = 0;
          trying = false;
          way = kept;
          return;
        }
      }
      if (bytes < window) return;
      costs[way] = ms / bytes;
      if (!trying) since += bytes;
      ms = bytes = 0;
      const other = way === 0 ? 1 : 0;
      const known = costs[other];
      if (known === undefined || (!trying && since >= retry)) {
        way = other;
        trying = true;
        since = 0;
        return;
      }
      // After a try, `way` is the one tried and `other` the one kept.
      const kept = trying ? other : way;
      const rival = kept === 0 ? 1 : 0;
      trying = false;
      way = costs[rival]! * margin < costs[kept]! ? rival : kept;
    },
  };
}
