/**
 * The gzip container (RFC 1952), written by `CompressionStream("gzip")`.
 *
 * @module
 */

import { createGzip } from "node:zlib";
import { platformCompressor, toWebTransform } from "./_streams.ts";

/** Options for {@linkcode gzipCompressStream}. */
export interface GzipCompressOptions {
  /**
   * Compression level 1 to 9. Undefined uses the web platform's
   * `CompressionStream("gzip")`, which deflates at level 6.
   *
   * @default {undefined}
   */
  level?: number;
}

/**
 * Creates a stream that compresses bytes into a single gzip member, which
 * gzip, zcat and 7-Zip all read whole.
 *
 * @param options The compression level.
 * @returns A writable/readable pair for `pipeThrough`.
 *
 * @example Usage
 * ```ts
 * import { gzipCompressStream } from "./gzip.ts";
 * import { gunzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const core = new TextEncoder().encode("a core, or anything ".repeat(1000));
 * const gz = await new Response(
 *   ReadableStream.from([core]).pipeThrough(gzipCompressStream({ level: 1 })),
 * ).bytes();
 * assert.deepEqual(gz.subarray(0, 3), new Uint8Array([0x1f, 0x8b, 0x08]));
 * assert.deepEqual(new Uint8Array(gunzipSync(gz)), core);
 * ```
 */
export function gzipCompressStream(
  options: GzipCompressOptions = {},
): ReadableWritablePair<Uint8Array, Uint8Array> {
  const { level } = options;
  return level === undefined
    ? platformCompressor("gzip")
    : toWebTransform(createGzip({ level }));
}
