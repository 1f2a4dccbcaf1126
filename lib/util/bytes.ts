/**
 * Private byte helpers.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** Ranges at least this long are compared natively, a chunk at a time. */
const NATIVE_ZERO_CHECK = 4096;
/** Bytes read one by one before a long range is compared natively. */
const PROBE = 64;
/** Compared at a time (with {@linkcode zeros}): stays in the cache. */
const ZERO_CHUNK = 64 << 10;

/**
 * True when bytes `start` to `end` are all zero. Long ranges are compared
 * with zeros by `Buffer.compare` (memcmp: 25 µs a MiB here, against 210 for
 * the word loop, which is what the capture spends on every zero page of a
 * core); short ones read 32-bit words where the memory is aligned.
 *
 * @example Usage
 * ```ts
 * import { isZero } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const page = new Uint8Array(4096);
 * assert.equal(isZero(page), true);
 * page[100] = 1;
 * assert.equal(isZero(page), false);
 * assert.equal(isZero(page, 101), true);
 * assert.equal(isZero(page, 0, 100), true);
 * ```
 *
 * @param bytes The bytes.
 * @param start The first byte looked at.
 * @param end The byte after the last one looked at.
 * @returns Whether they are all zero.
 */
export function isZero(
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): boolean {
  if (end - start >= NATIVE_ZERO_CHECK) {
    // A page with data mostly has it in its first bytes: found here, it
    // costs no native call (one cost 0.3-1 µs a page, 180 MB of inflated
    // pages took 11-44 ms of the decompressor's writing thread).
    for (let i = start; i < start + PROBE; i++) {
      if (bytes[i] !== 0) return false;
    }
    for (let at = start; at < end; at += ZERO_CHUNK) {
      const length = Math.min(ZERO_CHUNK, end - at);
      if (Buffer.compare(bytes.subarray(at, at + length), zeros(length))) {
        return false;
      }
    }
    return true;
  }
  let i = start;
  const address = bytes.byteOffset + i;
  const head = Math.min(end, i + ((4 - (address % 4)) % 4));
  for (; i < head; i++) if (bytes[i] !== 0) return false;
  const words = Math.floor((end - i) / 4);
  if (words > 0) {
    const view = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) if (view[w] !== 0) return false;
    i += words * 4;
  }
  for (; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Zeros that are never written to, shared by every caller of `zeros`. */
let shared = new Uint8Array(0);

/**
 * A view of `length` zero bytes from one shared buffer: no memory is
 * touched for them, and {@linkcode isSharedZeros} tells them apart without
 * reading them. The bytes must not be written to.
 *
 * @example Usage
 * ```ts
 * import { isSharedZeros, zeros } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const hole = zeros(8192);
 * assert.equal(hole.length, 8192);
 * assert.equal(hole.every((byte) => byte === 0), true);
 * assert.equal(isSharedZeros(hole), true);
 * ```
 *
 * @param length How many zero bytes.
 * @returns A view of them, shared with every other caller.
 */
export function zeros(length: number): Uint8Array {
  if (shared.length < length) shared = new Uint8Array(length);
  return shared.subarray(0, length);
}

/**
 * True for views made by {@linkcode zeros}: all zero, no need to look.
 *
 * @example Usage
 * ```ts
 * import { isSharedZeros, zeros } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isSharedZeros(zeros(4096)), true);
 * // Zeros of their own: they must be read to be known.
 * assert.equal(isSharedZeros(new Uint8Array(4096)), false);
 * // An empty view holds nothing to skip.
 * assert.equal(isSharedZeros(zeros(0)), false);
 * ```
 *
 * @param bytes The bytes.
 * @returns Whether they are a view made by `zeros`.
 */
export function isSharedZeros(bytes: Uint8Array): boolean {
  return bytes.buffer === shared.buffer && bytes.length > 0;
}

/**
 * Buffers viewed by one chunk only, marked by `disposableChunk`, with what
 * takes each back for reuse (or `true`: freed).
 */
const disposable = new WeakMap<ArrayBufferLike, Recycler | true>();

/** Takes back, for reuse, the memory of a chunk its consumer is done with. */
export type Recycler = (buffer: ArrayBuffer) => void;

/** Options for {@linkcode disposableChunk}. */
export interface DisposableChunkOptions {
  /**
   * Takes the memory back instead of freeing it: the producer writes its
   * next chunk into it. A buffer freshly allocated costs a page fault per
   * 4 KiB page the first time it is written (1 MiB: 0.3-0.5 ms here,
   * against 0.03 ms for the copy itself into memory already touched).
   *
   * @default {undefined}
   */
  recycle?: Recycler;
}

/**
 * Marks a chunk whose buffer nothing else uses, so that its last consumer
 * (a file sink, once the bytes are written) may free the memory at once
 * with {@linkcode disposeChunk} instead of leaving it to the collector, or
 * hand it back to its producer (`recycle`). V8
 * frees a buffer's memory when it collects the buffer, and a buffer that
 * waited in a queue through two minor collections waits for a major one:
 * capturing a 1 GiB core through the kernel, the deflated blocks and the
 * stored ones piled up to 155-172 MB of peak RSS, 129-137 MB once the
 * archive's sink freed each one it had written.
 *
 * @example Usage
 * ```ts
 * import { disposableChunk, disposeChunk } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const chunk = disposableChunk(new Uint8Array(1 << 20));
 * assert.equal(disposeChunk(chunk), true);
 * assert.equal(chunk.length, 0, "its buffer is gone");
 * // Anything not marked is left alone.
 * const shared = new Uint8Array(16);
 * assert.equal(disposeChunk(shared.subarray(4)), false);
 * assert.equal(shared.length, 16);
 * ```
 *
 * @example Memory handed back to its producer
 * ```ts
 * import { disposableChunk, disposeChunk } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const pool: ArrayBuffer[] = [];
 * const chunk = disposableChunk(new Uint8Array(4096).fill(7), {
 *   recycle: (buffer) => pool.push(buffer),
 * });
 * assert.equal(disposeChunk(chunk), true);
 * // The memory moved to a new buffer: the chunk's view is empty.
 * assert.equal(chunk.length, 0);
 * assert.equal(pool.length, 1);
 * assert.equal(pool[0]!.byteLength, 4096);
 * assert.equal(new Uint8Array(pool[0]!)[0], 7);
 * ```
 *
 * @param bytes A chunk in a buffer of its own: no other view of the buffer
 * is read after the chunk's consumer is done with it. A stream's producer
 * reads it before `enqueue()`, not after: a pipe may write the chunk, and
 * its sink free it, within that call.
 * @param options Where the memory goes back to, if anywhere.
 * @returns The same chunk.
 */
export function disposableChunk(
  bytes: Uint8Array,
  options: DisposableChunkOptions = {},
): Uint8Array {
  disposable.set(bytes.buffer, options.recycle ?? true);
  return bytes;
}

/**
 * Frees the memory of a chunk marked by {@linkcode disposableChunk} now,
 * by detaching its buffer (every view of it becomes empty), or hands it to
 * the chunk's `recycle` in a new buffer (the old views are empty all the
 * same). A chunk that is not marked is left as it is.
 *
 * @example Usage
 * ```ts
 * import { disposableChunk, disposeChunk } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * const chunk = disposableChunk(new Uint8Array([1, 2, 3]));
 * assert.equal(disposeChunk(chunk), true);
 * assert.equal(disposeChunk(chunk), false, "once");
 * ```
 *
 * @param bytes The chunk, done with.
 * @returns Whether its memory was freed or handed back.
 */
export function disposeChunk(bytes: Uint8Array): boolean {
  const buffer = bytes.buffer;
  const recycle = disposable.get(buffer);
  if (recycle === undefined || !(buffer instanceof ArrayBuffer)) return false;
  disposable.delete(buffer);
  // Moved, not copied: the memory stays, and no old view reaches it.
  if (recycle === true) buffer.transfer(0);
  else recycle(buffer.transfer());
  return true;
}

/**
 * Two byte arrays, one after the other, in a new array.
 *
 * @example Usage
 * ```ts
 * import { concat } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   concat(new Uint8Array([1, 2]), new Uint8Array([3])),
 *   new Uint8Array([1, 2, 3]),
 * );
 * ```
 *
 * @param a The first bytes.
 * @param b The bytes that follow.
 * @returns A new array of both.
 */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Bytes as two lowercase hex digits each.
 *
 * @example Usage
 * ```ts
 * import { toHex } from "./bytes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toHex(new Uint8Array([0x7f, 0x45, 0x4c])), "7f454c");
 * assert.equal(toHex(new Uint8Array([0x1f, 0x8b]), " "), "1f 8b");
 * ```
 *
 * @param bytes The bytes.
 * @param separator Put between bytes.
 * @returns The digits.
 */
export function toHex(bytes: Uint8Array, separator = ""): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(
    separator,
  );
}
