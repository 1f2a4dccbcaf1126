/**
 * Private: deflating one block of the parallel compressor, the same code in
 * a worker (`_deflate_worker.ts`) and in the main thread (`inline`, or the
 * fallback when the workers fail), so that both write the same bytes.
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import { adler32 } from "./zlib.ts";

/** A deflated block. */
export interface DeflatedBlock {
  /**
   * Raw deflate data ending in a sync flush; owns its whole buffer, or is
   * a view of the `into` given.
   */
  deflated: Uint8Array;
  /** The block's Adler-32 when asked for, else 0. */
  adler: number;
}

/** Options for {@linkcode deflateBlock}. */
export interface DeflateBlockOptions {
  /** Deflate level 1 to 9. */
  level: number;
  /** Also compute the block's Adler-32 (zlib format). */
  adler: boolean;
  /**
   * What {@linkcode looksIncompressible} says of the block, when the caller
   * has asked already (a capture asks as it reads); asked here otherwise.
   *
   * @default {undefined}
   */
  incompressible?: boolean | undefined;
  /**
   * Memory for the stored blocks of a block that will not shrink, reused
   * instead of a new buffer when large enough ({@linkcode storedLength});
   * the result is then a view of it. Deflated data never goes there.
   *
   * @default {undefined}
   */
  into?: ArrayBuffer | undefined;
}

/**
 * Deflates a block on its own, ending in a sync flush (byte-aligned, not
 * final), so that blocks join into one deflate stream, as pigz joins them.
 * A block that will not shrink (random bytes, compressed or encrypted
 * data) is written as stored blocks instead, at the cost of a copy: deflate
 * spends about 20 ns a byte finding that out, a copy under 1 ns.
 *
 * @param data The block.
 * @param options The level, the checksum, and the answer to whether it
 * will shrink, if known.
 * @returns The deflate data, in a buffer of its own (transferable), or in
 * `into`.
 */
export function deflateBlock(
  data: Uint8Array,
  options: DeflateBlockOptions,
): DeflatedBlock {
  const { level, adler } = options;
  const checksum = adler ? adler32(1, data) : 0;
  if (options.incompressible ?? looksIncompressible(data)) {
    return { deflated: storedBlocks(data, options.into), adler: checksum };
  }
  const out = deflateRawSync(data, {
    level,
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  // Hand over zlib's own buffer when the result fills it; else copy.
  const deflated =
    out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
      ? new Uint8Array(out.buffer, 0, out.byteLength)
      : new Uint8Array(out);
  return { deflated, adler: checksum };
}

/** Bytes of a block sampled to tell whether it will shrink. */
const SAMPLE_BYTES = 4096;
/** Samples taken across a block; all must not shrink. */
const SAMPLES = 4;
/** A sample that deflates to more than this share of itself will not shrink. */
const STORED_RATIO = 0.97;
/**
 * Samples whose bytes carry less information than this, in bits a byte,
 * shrink by Huffman coding alone (3% and more below 7.76): deflated.
 */
const STORED_ENTROPY = 7.8;
/** Blocks smaller than this are always deflated: sampling them costs as much. */
const MIN_SAMPLED_BLOCK = 64 << 10;

/**
 * Tells, cheaply and before deflating it, whether a block will not shrink:
 * {@linkcode SAMPLES} samples of {@linkcode SAMPLE_BYTES} spread across it
 * must carry nearly 8 bits a byte (their byte counts' entropy, at least
 * {@linkcode STORED_ENTROPY}: skewed bytes shrink by Huffman coding), and
 * each, deflated at level 1, must come out at more than
 * {@linkcode STORED_RATIO} of its size (repeats shrink by matches; zlib-ng's
 * level 1 codes with fixed Huffman codes only, so it alone misses the
 * first). A block that compresses anywhere in a sample (text, code, tables
 * of small numbers, repeats within 4 KiB) is deflated whole; what the
 * samples miss costs only compression, never correctness.
 *
 * @param data The block.
 * @returns True when it is to be stored.
 *
 * @example Usage
 * ```ts
 * import { looksIncompressible } from "./_deflate_block.ts";
 * import assert from "node:assert/strict";
 *
 * const random = crypto.getRandomValues(new Uint8Array(65536));
 * const text = new TextEncoder().encode("record name=item value=1;".repeat(4096));
 * assert.equal(
 *   looksIncompressible(new Uint8Array(1 << 20).map((_, i) => random[i % 65536]!)),
 *   true,
 * );
 * assert.equal(looksIncompressible(text), false);
 * // Small blocks are always deflated.
 * assert.equal(looksIncompressible(random.subarray(0, 4096)), false);
 * ```
 */
export function looksIncompressible(data: Uint8Array): boolean {
  if (data.length < MIN_SAMPLED_BLOCK) return false;
  const step = Math.floor((data.length - SAMPLE_BYTES) / (SAMPLES - 1));
  const counts = new Uint32Array(256);
  for (let i = 0; i < SAMPLES; i++) {
    const sample = data.subarray(i * step, i * step + SAMPLE_BYTES);
    for (let j = 0; j < sample.length; j++) counts[sample[j]!]!++;
  }
  const total = SAMPLES * SAMPLE_BYTES;
  let entropy = 0;
  for (const count of counts) {
    if (count > 0) entropy -= count / total * Math.log2(count / total);
  }
  if (entropy < STORED_ENTROPY) return false;
  for (let i = 0; i < SAMPLES; i++) {
    const sample = data.subarray(i * step, i * step + SAMPLE_BYTES);
    const out = deflateRawSync(sample, { level: 1 });
    if (out.length <= sample.length * STORED_RATIO) return false;
  }
  return true;
}

/** Most bytes of one stored deflate block. */
const MAX_STORED = 65535;

/**
 * The bytes of {@linkcode storedBlocks} for `length` bytes of data.
 *
 * @param length The data's length.
 * @returns 5 bytes of header per 65535 bytes of data, plus the data.
 */
export function storedLength(length: number): number {
  return length + 5 * Math.max(1, Math.ceil(length / MAX_STORED));
}

/**
 * Raw deflate stored blocks (RFC 1951 3.2.4, BTYPE 00, not final) holding
 * `data`, from a byte boundary to a byte boundary: they join other blocks
 * that end in a sync flush as those blocks do.
 *
 * @param data The bytes, at least one.
 * @param into Memory to write them to, from its start, when it is large
 * enough ({@linkcode storedLength}); else a new buffer.
 * @returns The blocks: 5 bytes of header per 65535 bytes of data.
 */
export function storedBlocks(
  data: Uint8Array,
  into?: ArrayBuffer,
): Uint8Array {
  const total = storedLength(data.length);
  const out = into !== undefined && into.byteLength >= total
    ? new Uint8Array(into, 0, total)
    : new Uint8Array(total);
  let at = 0;
  for (let from = 0; from < data.length || at === 0;) {
    const length = Math.min(MAX_STORED, data.length - from);
    // BFINAL 0, BTYPE 00, then LEN and its one's complement, little-endian.
    out[at] = 0;
    out[at + 1] = length & 0xff;
    out[at + 2] = length >> 8;
    out[at + 3] = ~length & 0xff;
    out[at + 4] = (~length >> 8) & 0xff;
    out.set(data.subarray(from, from + length), at + 5);
    at += 5 + length;
    from += length;
    if (length === 0) break;
  }
  return out;
}
