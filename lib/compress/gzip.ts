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
 * ```ts ignore
 * import { gzipCompressStream } from "./gzip.ts";
 * const file = await Deno.open("core");
 * const gz = file.readable.pipeThrough(gzipCompressStream({ level: 1 }));
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
