/**
 * The zlib container (RFC 1950): a two-byte header, raw deflate data and an
 * Adler-32 trailer, built around `CompressionStream("deflate-raw")`.
 *
 * The header and checksum are written here rather than left to
 * `CompressionStream("deflate")` so that the same framing serves deflate data
 * from any engine (a chosen level, or blocks deflated in parallel).
 *
 * @module
 */

import { createDeflateRaw } from "node:zlib";
import { platformCompressor, toWebTransform } from "./_streams.ts";

/** The Adler-32 modulus: the largest prime below 2^16. */
const BASE = 65521;
/** Bytes that can be summed before the 32-bit sums may overflow. */
const NMAX = 5552;

/**
 * Updates an Adler-32 checksum with more bytes.
 *
 * @param adler The checksum so far; 1 for an empty input.
 * @param bytes The next bytes.
 * @returns The checksum including `bytes`, as an unsigned 32-bit number.
 *
 * @example Usage
 * ```ts
 * import { adler32 } from "./zlib.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(adler32(1, new TextEncoder().encode("Wikipedia")), 0x11e60398);
 * assert.equal(adler32(1, new Uint8Array(0)), 1);
 * ```
 */
export function adler32(adler: number, bytes: Uint8Array): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  const length = bytes.length;
  let i = 0;
  while (i < length) {
    const end = Math.min(i + NMAX, length);
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= BASE;
    b %= BASE;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Builds the two-byte zlib header for a 32 KiB window at a compression level,
 * with the FLEVEL hint zlib itself writes and the FCHECK bits set.
 *
 * @param level Compression level 1 to 9, or undefined for the default (6).
 * @returns The CMF and FLG bytes.
 *
 * @example Usage
 * ```ts
 * import { zlibHeader } from "./zlib.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(zlibHeader(undefined), new Uint8Array([0x78, 0x9c]));
 * assert.deepEqual(zlibHeader(1), new Uint8Array([0x78, 0x01]));
 * assert.deepEqual(zlibHeader(9), new Uint8Array([0x78, 0xda]));
 * ```
 */
export function zlibHeader(level: number | undefined): Uint8Array {
  const cmf = 0x78; // CM 8 (deflate), CINFO 7 (32 KiB window)
  const flevel = level === undefined || level === 6
    ? 2
    : level === 1
    ? 0
    : level < 6
    ? 1
    : 3;
  let flg = flevel << 6;
  flg += 31 - ((cmf * 256 + flg) % 31);
  return new Uint8Array([cmf, flg]);
}

/** Options for {@linkcode zlibCompressStream}. */
export interface ZlibCompressOptions {
  /**
   * Compression level 1 to 9. Undefined uses the web platform's
   * `CompressionStream("deflate-raw")`.
   *
   * @default {undefined}
   */
  level?: number;
}

/**
 * Creates a stream that compresses bytes into one zlib stream: the header,
 * raw deflate data, and the Adler-32 of the input, big-endian.
 *
 * @param options The compression level.
 * @returns A writable/readable pair for `pipeThrough`.
 *
 * @example Usage
 * ```ts
 * import { zlibCompressStream } from "./zlib.ts";
 * import { inflateSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const core = new TextEncoder().encode("a core, or anything ".repeat(1000));
 * const zz = await new Response(
 *   ReadableStream.from([core]).pipeThrough(zlibCompressStream({ level: 9 })),
 * ).bytes();
 * assert.deepEqual(zz.subarray(0, 2), new Uint8Array([0x78, 0xda]));
 * assert.ok(zz.length < core.length / 10);
 * assert.deepEqual(new Uint8Array(inflateSync(zz)), core);
 * ```
 */
export function zlibCompressStream(
  options: ZlibCompressOptions = {},
): ReadableWritablePair<Uint8Array, Uint8Array> {
  const { level } = options;
  let adler = 1;
  const checksum = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      adler = adler32(adler, chunk);
      controller.enqueue(chunk);
    },
  });
  const deflate = level === undefined
    ? platformCompressor("deflate-raw")
    : toWebTransform(createDeflateRaw({ level }));
  const framing = new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      controller.enqueue(zlibHeader(level));
    },
    flush(controller) {
      const trailer = new Uint8Array(4);
      new DataView(trailer.buffer).setUint32(0, adler, false);
      controller.enqueue(trailer);
    },
  });
  return {
    writable: checksum.writable,
    readable: checksum.readable.pipeThrough(deflate).pipeThrough(framing),
  };
}
