/**
 * Private: keeps short-lived buffers from piling up.
 *
 * Buffers made by `node:zlib` and by byte streams live outside V8's heap,
 * and V8 collects them only when its own heap asks for it: streaming a core
 * through a loop that makes a buffer per block lets tens of megabytes of
 * dead buffers wait in each isolate (measured: 156 MB peak RSS compressing
 * a 957 MB core, 121 MB with a collection every 32 MiB). Where the runtime
 * exposes `gc` (the binary runs with `--expose-gc`, scripts/permissions.ts)
 * a meter asks for a collection every so many bytes; elsewhere it does
 * nothing.
 *
 * Memory that the collector frees goes back to the C heap, not to the
 * system: glibc keeps it in each thread's arena. {@linkcode trimHeap} hands
 * the arenas' free pages back.
 *
 * @module
 */

import { withLibc } from "./libc.ts";

/** Bytes of buffers made between two collections. */
const DEFAULT_THRESHOLD = 32 << 20;

/** Options for {@linkcode garbageMeter}. */
export interface GarbageMeterOptions {
  /**
   * Bytes of buffers made between two collections.
   *
   * @default {33554432}
   */
  threshold?: number;
  /**
   * Ask for a minor collection (the young generation only, where buffers
   * made per block die): well under a millisecond, against about 6.5 ms
   * for a full one.
   *
   * @default {false}
   */
  minor?: boolean;
  /**
   * Bytes of buffers made between two {@linkcode trimHeap} calls, each
   * right after a collection (which is what frees the buffers to the C
   * heap); undefined never trims.
   */
  trim?: number;
}

/**
 * Returns a function to call with the bytes of each buffer made; it asks
 * for a garbage collection once `threshold` bytes have passed.
 *
 * @example Usage
 * ```ts
 * import { garbageMeter } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * const collect = garbageMeter({ threshold: 1 << 20, minor: true });
 * for (let i = 0; i < 4; i++) {
 *   const block = new Uint8Array(512 << 10);
 *   // Without `--expose-gc` (as here) the meter counts and asks nothing.
 *   assert.equal(collect(block.length), undefined);
 * }
 * ```
 *
 * @param options Bytes between collections, and which collection.
 * @returns The meter.
 */
export function garbageMeter(
  options: GarbageMeterOptions = {},
): (bytes: number) => void {
  const { threshold = DEFAULT_THRESHOLD, minor = false, trim } = options;
  const gc = (globalThis as { gc?: (options?: { type: string }) => void }).gc;
  let since = 0;
  let sinceTrim = 0;
  return (bytes) => {
    since += bytes;
    sinceTrim += bytes;
    if (since >= threshold && gc !== undefined) {
      since = 0;
      gc(minor ? { type: "minor" } : undefined);
    }
    if (trim !== undefined && sinceTrim >= trim) {
      sinceTrim = 0;
      trimHeap();
    }
  };
}

const TRIM_SYMBOLS = {
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const;

/**
 * Returns the free pages of every arena of the C heap to the system
 * (glibc's `malloc_trim(0)`). Each worker's arena keeps the blocks its
 * deflate calls freed: measured on a 1 GiB core captured from a pipe, the
 * peak RSS was 140-165 MB without a trim and 133-145 MB with one every
 * 16 MiB in each compression worker. A trimmed page that is used again
 * costs a page fault, so this is for every few megabytes, not every call.
 *
 * @example Usage
 * ```ts
 * import { trimHeap } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * // True or false (whether glibc had pages to release); false where libc
 * // cannot be loaded. It never throws.
 * assert.equal(typeof trimHeap(), "boolean");
 * ```
 *
 * @returns Whether memory was released (false without glibc or FFI).
 */
export function trimHeap(): boolean {
  return withLibc(TRIM_SYMBOLS, (libc) => libc.malloc_trim(0n) === 1) ?? false;
}
