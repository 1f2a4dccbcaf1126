/**
 * The chunk index that lets a gzip member be inflated in parallel, carried
 * in the member's own header: an extra-field subfield (RFC 1952, FEXTRA),
 * which gzip, zcat, 7-Zip and python skip. The file stays one standard
 * member.
 *
 * The parallel compressor deflates every block on its own, so each block
 * starts on a byte boundary at a fresh deflate block and refers to nothing
 * before it. The index lists, for consecutive chunks of `2^log2` input
 * bytes (one or more whole blocks), how many compressed bytes each takes;
 * the first chunk starts right after the header, the last one ends with the
 * final deflate block, and the 8-byte trailer follows. A reader that trusts
 * nothing checks the lengths against the file size, each chunk's output
 * length and its end, and the member's CRC-32 and length in the trailer.
 *
 * Subfield `C` `I` (core index), LEN = 8 + 4 × capacity:
 *
 * | bytes | meaning |
 * | --- | --- |
 * | 0 | version, 1 |
 * | 1 | log2 of the input bytes per chunk |
 * | 2 | log2 of the compressor's block size (chunks are whole blocks) |
 * | 3 | the deflate level the blocks were compressed at |
 * | 4-7 | chunks described (little-endian); 0 means no index |
 * | 8- | compressed bytes of each chunk (32-bit little-endian), then zeros |
 *
 * Blocks of zeros are all compressed the same way (one prebuilt block per
 * block size and level), so a reader that knows the block size and the
 * level recognises a chunk of zeros by its bytes and need not inflate it.
 *
 * The header is written first with the space reserved and no chunks; the
 * index is written into it when the data is complete (the output must be a
 * file, not a pipe).
 *
 * @module
 */

import type { FilePatch } from "../fs/mod.ts";

/** The subfield ID: `C`, `I`. */
const SI1 = 0x43;
const SI2 = 0x49;
const VERSION = 1;
/** Offset of the subfield's payload in the header. */
const PAYLOAD_OFFSET = 16;
const PAYLOAD_HEAD = 8;
/** Capacity is bounded by XLEN, a 16-bit field: (65535 - 4 - 8) / 4. */
export const MAX_INDEX_CAPACITY = 16_380;
/** Chunks stay below 2 GiB so that their compressed lengths fit 32 bits. */
const MAX_LOG2 = 30;
const MIN_LOG2 = 12;

/** A chunk index as read from a header. */
export interface GzipIndex {
  /** Bytes of header before the deflate data. */
  headerLength: number;
  /** Input bytes per chunk (the last chunk may hold fewer). */
  chunkSize: number;
  /** Compressed bytes of each chunk, in order. */
  lengths: number[];
  /** The compressor's block size. */
  blockSize: number;
  /** The deflate level of the blocks. */
  level: number;
}

/**
 * Builds a gzip header with an extra field that reserves room for an index
 * of `capacity` chunks.
 *
 * @example Usage
 * ```ts
 * import { extraFieldEnd, indexedGzipHeader, readGzipIndex } from "./gzip_index.ts";
 * import assert from "node:assert/strict";
 *
 * const header = indexedGzipHeader(4, { level: 5, blockSize: 1 << 20 });
 * // 10 bytes, XLEN, the subfield's 4-byte head, and 8 + 4 × 4 of payload.
 * assert.equal(header.length, 10 + 2 + 4 + 8 + 4 * 4);
 * assert.deepEqual(header.subarray(0, 4), new Uint8Array([0x1f, 0x8b, 8, 0x04]));
 * assert.equal(extraFieldEnd(header), header.length);
 * // No chunks yet: no index.
 * assert.equal(readGzipIndex(header, header.length + 10), undefined);
 * ```
 *
 * @param capacity Chunks the index can describe (2 to
 * {@linkcode MAX_INDEX_CAPACITY}).
 * @param options The deflate level, for the XFL byte, and the block size.
 * @returns The header bytes.
 */
export function indexedGzipHeader(
  capacity: number,
  options: { level: number; blockSize: number },
): Uint8Array {
  const length = PAYLOAD_HEAD + 4 * capacity;
  const header = new Uint8Array(PAYLOAD_OFFSET + length);
  const view = new DataView(header.buffer);
  header.set([0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, xfl(options.level), 3]);
  view.setUint16(10, length + 4, true);
  header.set([SI1, SI2], 12);
  view.setUint16(14, length, true);
  header.set(
    payloadHead(Math.log2(options.blockSize), options),
    PAYLOAD_OFFSET,
  );
  return header;
}

/**
 * The gzip header without an extra field.
 *
 * @example Usage
 * ```ts
 * import { plainGzipHeader } from "./gzip_index.ts";
 * import assert from "node:assert/strict";
 *
 * // No flags, no time, XFL 4 (fastest), OS 3 (Unix).
 * assert.deepEqual(
 *   plainGzipHeader({ level: 1 }),
 *   new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3]),
 * );
 * ```
 *
 * @param options The deflate level, for the XFL byte.
 * @returns The 10 header bytes.
 */
export function plainGzipHeader(options: { level: number }): Uint8Array {
  return new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl(options.level), 3]);
}

/** The payload's first four bytes; the count stays 0. */
function payloadHead(
  log2: number,
  options: { level: number; blockSize: number },
): Uint8Array {
  return new Uint8Array([
    VERSION,
    log2,
    Math.log2(options.blockSize),
    options.level,
  ]);
}

function xfl(level: number): number {
  return level >= 9 ? 2 : level <= 1 ? 4 : 0;
}

/**
 * Collects the compressed length of each block as the blocks are written,
 * in chunks of whole blocks; when the chunks outgrow the capacity, pairs of
 * chunks merge into chunks twice the size.
 */
export interface IndexBuilder {
  /** Counts the next block: `compressed` bytes for `input` bytes. */
  add(compressed: number, input: number): void;
  /** The index to write into the header (after the last block). */
  patch(): FilePatch;
}

/**
 * Starts an index for blocks of `blockSize` bytes (a power of two).
 *
 * @example Usage
 * ```ts
 * import { indexBuilder, indexedGzipHeader, readGzipIndex } from "./gzip_index.ts";
 * import assert from "node:assert/strict";
 *
 * const options = { level: 5, blockSize: 4096 };
 * const header = indexedGzipHeader(4, options);
 * const builder = indexBuilder(4, options);
 * builder.add(100, 4096); // compressed bytes, input bytes
 * builder.add(120, 4096);
 * builder.add(30, 1000); // the last, short block
 * builder.add(2, 0); // the empty final block
 * const { offset, bytes } = builder.patch();
 * header.set(bytes, offset);
 * // The whole member: header, 252 bytes of deflate data, 8 of trailer.
 * const index = readGzipIndex(header, header.length + 252 + 8);
 * assert.deepEqual(index?.lengths, [100, 120, 32]);
 * assert.equal(index?.chunkSize, 4096);
 * ```
 *
 * @param capacity The capacity reserved by {@linkcode indexedGzipHeader}.
 * @param options The block size and the deflate level.
 * @returns The builder.
 */
export function indexBuilder(
  capacity: number,
  options: { blockSize: number; level: number },
): IndexBuilder {
  const { blockSize } = options;
  let log2 = Math.log2(blockSize);
  let valid = Number.isInteger(log2) && log2 >= MIN_LOG2 && capacity >= 2 &&
    capacity % 2 === 0 && capacity <= MAX_INDEX_CAPACITY;
  const lengths: number[] = [];
  let current = 0; // compressed bytes of the chunk in progress
  let currentInput = 0;
  let ended = false; // a short block came: only the final block may follow
  /** Full: pairs of chunks become chunks twice the size. */
  const merge = () => {
    if (log2 >= MAX_LOG2) {
      valid = false;
      return;
    }
    for (let i = 0; i < capacity / 2; i++) {
      lengths[i] = lengths[2 * i]! + lengths[2 * i + 1]!;
    }
    lengths.length = capacity / 2;
    log2++;
  };
  return {
    add(compressed, input) {
      if (!valid) return;
      if (ended && input > 0) valid = false;
      if (input < blockSize) ended = true;
      current += compressed;
      currentInput += input;
      if (currentInput < 2 ** log2) return;
      if (lengths.length === capacity) {
        // The chunk just completed is now the first half of a larger one.
        merge();
        return;
      }
      lengths.push(current);
      current = 0;
      currentInput = 0;
    },
    patch() {
      const bytes = new Uint8Array(PAYLOAD_HEAD + 4 * capacity);
      if (currentInput > 0 && lengths.length === capacity) merge();
      bytes.set(payloadHead(log2, options));
      const all = [...lengths];
      if (currentInput > 0) all.push(current);
      else if (all.length > 0) all[all.length - 1]! += current; // final block
      if (!valid || all.length === 0 || all.some((n) => n >= 2 ** 32)) {
        return { offset: PAYLOAD_OFFSET, bytes };
      }
      const view = new DataView(bytes.buffer);
      view.setUint32(4, all.length, true);
      all.forEach((n, i) => view.setUint32(PAYLOAD_HEAD + 4 * i, n, true));
      return { offset: PAYLOAD_OFFSET, bytes };
    },
  };
}

/**
 * How many header bytes {@linkcode readGzipIndex} needs to see.
 *
 * @example Usage
 * ```ts
 * import { extraFieldEnd, indexedGzipHeader, plainGzipHeader } from "./gzip_index.ts";
 * import assert from "node:assert/strict";
 *
 * const plain = plainGzipHeader({ level: 6 });
 * assert.equal(extraFieldEnd(new Uint8Array([...plain, 0, 0])), 10);
 * const indexed = indexedGzipHeader(1024, { level: 6, blockSize: 1 << 20 });
 * assert.equal(extraFieldEnd(indexed.subarray(0, 12)), indexed.length);
 * ```
 *
 * @param head The first bytes of a gzip file (at least 12).
 * @returns The length of the header up to the end of its extra field; 10
 * when it has none.
 */
export function extraFieldEnd(head: Uint8Array): number {
  if (head.length < 12 || (head[3]! & 0x04) === 0) return 10;
  return 12 + (head[10]! | (head[11]! << 8));
}

/**
 * Reads the chunk index of a gzip header, if it has one that fits a file of
 * `fileSize` bytes holding one member.
 *
 * @param head The file's first bytes, through the end of the extra field.
 * @param fileSize The whole file's size.
 * @returns The index, or undefined when there is none or it does not add up
 * (the file is then read in one stream, as any gzip file).
 *
 * @example Usage
 * ```ts
 * import { extraFieldEnd, readGzipIndex } from "./gzip_index.ts";
 * import { parallelCompress } from "./parallel_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * // Five blocks of 4 KiB, compressed with an index, which is written over
 * // the header at the end (as `writeFileAtomic`'s `amend` does).
 * const input = new Uint8Array(5 * 4096).map((_, i) => i % 251);
 * const stream = parallelCompress(ReadableStream.from([input]), {
 *   inline: true,
 *   blockSize: 4096,
 *   index: {},
 * });
 * const file = await new Response(stream).bytes();
 * const patch = stream.amendment.patch;
 * assert.ok(patch !== undefined);
 * file.set(patch.bytes, patch.offset);
 *
 * const head = file.subarray(0, extraFieldEnd(file));
 * const index = readGzipIndex(head, file.length);
 * assert.equal(index?.chunkSize, 4096);
 * assert.equal(index?.lengths.length, 5);
 * // A file of another size is not the one the index describes.
 * assert.equal(readGzipIndex(head, file.length + 1), undefined);
 * ```
 */
export function readGzipIndex(
  head: Uint8Array,
  fileSize: number,
): GzipIndex | undefined {
  // Only the header this module writes: FEXTRA alone, one subfield first.
  if (head.length < PAYLOAD_OFFSET + PAYLOAD_HEAD) return undefined;
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) return undefined;
  if (head[3] !== 0x04 || head[12] !== SI1 || head[13] !== SI2) {
    return undefined;
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const xlen = view.getUint16(10, true);
  const length = view.getUint16(14, true);
  const headerLength = 12 + xlen;
  if (length + 4 > xlen || head.length < headerLength) return undefined;
  if (head[PAYLOAD_OFFSET] !== VERSION) return undefined;
  const log2 = head[PAYLOAD_OFFSET + 1]!;
  const blockLog2 = head[PAYLOAD_OFFSET + 2]!;
  const level = head[PAYLOAD_OFFSET + 3]!;
  const count = view.getUint32(PAYLOAD_OFFSET + 4, true);
  if (log2 < MIN_LOG2 || log2 > MAX_LOG2) return undefined;
  if (blockLog2 < MIN_LOG2 || blockLog2 > log2) return undefined;
  if (count === 0 || PAYLOAD_HEAD + 4 * count > length) return undefined;
  const chunkSize = 2 ** log2;
  const lengths: number[] = [];
  let total = headerLength + 8;
  for (let i = 0; i < count; i++) {
    const n = view.getUint32(PAYLOAD_OFFSET + PAYLOAD_HEAD + 4 * i, true);
    // At least an empty stored block.
    if (n < 2 || n > maxCompressed(chunkSize)) return undefined;
    lengths.push(n);
    total += n;
  }
  if (total !== fileSize) return undefined;
  return { headerLength, chunkSize, lengths, blockSize: 2 ** blockLog2, level };
}

/**
 * The most compressed bytes a chunk may take: a sanity bound on the memory
 * a chunk needs. Deno's deflate at level 1 expands random data by 5.4%
 * (measured), more than stored blocks would.
 */
function maxCompressed(chunkSize: number): number {
  return chunkSize + chunkSize / 8 + 65536;
}
