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
 * @module
 */

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
  const { threshold = DEFAULT_THRESHOLD, minor = false } = options;
  const gc = (globalThis as { gc?: (options?: { type: string }) => void }).gc;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < threshold || gc === undefined) return;
    since = 0;
    gc(minor ? { type: "minor" } : undefined);
  };
}

/** glibc's `mallopt` parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;

/** Options for {@linkcode keepFreedMemory}. */
export interface KeepFreedMemoryOptions {
  /**
   * Allocations at least this large get pages of their own from the
   * kernel (`M_MMAP_THRESHOLD`); smaller ones come from the heap.
   *
   * @default {4194304}
   */
  mmapThreshold?: number;
  /**
   * Free memory at the top of a heap is given back to the kernel only past
   * this (`M_TRIM_THRESHOLD`).
   *
   * @default {8388608}
   */
  trimThreshold?: number;
}

/**
 * Tells glibc's malloc to keep block-sized buffers in its heaps once they
 * are freed, instead of giving their pages back to the kernel: a buffer of
 * 1 MiB (a block, a stored block's output, zlib's) is above its default
 * mmap threshold, so each one got fresh pages, faulted in and zeroed one by
 * one, and unmapped when V8 freed it (measured: 175-355 µs to allocate and
 * fill 1 MiB, 60 with this; a copy alone takes 25). Peak memory is what it
 * was: the freed buffers are the ones the next blocks reuse. Call it before
 * the workers start; it does nothing where libc's `mallopt` cannot be
 * loaded (musl, no FFI permission).
 *
 * @example Usage
 * ```ts
 * import { keepFreedMemory } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof keepFreedMemory(), "boolean");
 * ```
 *
 * @param options The thresholds.
 * @returns True when malloc took both settings.
 */
export function keepFreedMemory(options: KeepFreedMemoryOptions = {}): boolean {
  const { mmapThreshold = 4 << 20, trimThreshold = 8 << 20 } = options;
  let library;
  try {
    library = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
    });
  } catch {
    return false;
  }
  try {
    // mallopt returns 1 on success.
    return library.symbols.mallopt(M_MMAP_THRESHOLD, mmapThreshold) === 1 &&
      library.symbols.mallopt(M_TRIM_THRESHOLD, trimThreshold) === 1;
  } finally {
    library.close();
  }
}
