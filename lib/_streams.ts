/**
 * Private bridges between compression engines and web streams of bytes.
 *
 * @module
 */

import { Duplex } from "node:stream";
import type { Transform } from "node:stream";

/** A transform of byte chunks, as `pipeThrough` takes it. */
export type BytePair = ReadableWritablePair<Uint8Array, Uint8Array>;

/** Wraps a Node.js transform (a zlib engine) as a web transform stream. */
export function toWebTransform(transform: Transform): BytePair {
  return Duplex.toWeb(transform) as unknown as BytePair;
}

/**
 * The web platform's `CompressionStream`, typed for the `Uint8Array` chunks
 * of file streams (its declared input type, `BufferSource`, excludes views
 * of a `SharedArrayBuffer`, which no stream here produces).
 */
export function platformCompressor(format: CompressionFormat): BytePair {
  return new CompressionStream(format) as unknown as BytePair;
}
