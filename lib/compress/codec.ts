/**
 * Compression and decompression in both formats, chosen by option when
 * writing and by the data's first bytes when reading.
 *
 * @module
 */

import { createGunzip, createInflate } from "node:zlib";
import { gzipCompressStream } from "./gzip.ts";
import {
  type CompressedStream,
  parallelCompress,
  type ParallelCompressOptions,
} from "./parallel_deflate.ts";
import { toWebTransform } from "./_streams.ts";
import { adler32, zlibCompressStream } from "./zlib.ts";
import { extraFieldEnd, readGzipIndex } from "./gzip_index.ts";
import {
  ChunkError,
  MAX_PARALLEL_CHUNK,
  parallelInflate,
} from "./parallel_inflate.ts";
import { compact, concat, openByteSource, toHex } from "../util/mod.ts";

/** Compressed container formats the tool reads and writes. */
export type Format = "gzip" | "zlib";

/** The data is not a valid gzip or zlib stream (corrupt, truncated, other). */
export class ArchiveFormatError extends Error {
  /** Creates the error; the message says what was expected and found. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ArchiveFormatError";
  }
}

/** Options for {@linkcode compressStream}. */
export interface CompressOptions {
  /**
   * The container to write.
   *
   * @default {"gzip"}
   */
  format?: Format;
  /**
   * Compression level 1 to 9; undefined uses `CompressionStream`.
   *
   * @default {undefined}
   */
  level?: number;
}

/**
 * Creates a compressing stream for a format.
 *
 * @param options Format and level.
 * @returns A writable/readable pair for `pipeThrough`.
 *
 * @example Usage
 * ```ts
 * import { compressStream, detectFormat } from "./codec.ts";
 * import { inflateSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const core = new TextEncoder().encode("a core, or anything ".repeat(1000));
 * const zz = await new Response(
 *   ReadableStream.from([core]).pipeThrough(compressStream({ format: "zlib" })),
 * ).bytes();
 * assert.equal(detectFormat(zz), "zlib");
 * assert.deepEqual(new Uint8Array(inflateSync(zz)), core);
 * ```
 */
export function compressStream(
  options: CompressOptions = {},
): ReadableWritablePair<Uint8Array, Uint8Array> {
  const { format = "gzip", level } = options;
  const engine = compact({ level });
  return format === "gzip"
    ? gzipCompressStream(engine)
    : zlibCompressStream(engine);
}

/**
 * The deflate level of parallel compression when none is given. Measured on
 * real cores on a 2-core machine (README, `deno task bench`): level 5 writes
 * within 2% of `gzip -6` on node and python heaps, as fast as level 3, which
 * writes 4-13% more; level 6 takes a third longer for 0.5% less.
 */
export const DEFAULT_PARALLEL_LEVEL = 5;

/**
 * Options for {@linkcode compress}: the parallel compressor's, where they
 * mean the same.
 */
export interface CompressAllOptions extends
  CompressOptions,
  Pick<
    ParallelCompressOptions,
    "index" | "inline" | "fallback" | "onWarning" | "onEnd"
  > {
  /**
   * Worker threads; 1 compresses in this thread with `CompressionStream`
   * (or `node:zlib` at a given level).
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
  /**
   * The most bytes of the whole output (`parallelCompress`'s `maxOutput`).
   * With `jobs` 1 the blocks are then compressed in this thread (`inline`),
   * as `CompressionStream` cannot stop in between.
   *
   * @default {undefined}
   */
  maxOutput?: ParallelCompressOptions["maxOutput"];
}

/**
 * Compresses a stream into one gzip member or zlib stream: in parallel
 * workers when `jobs` is above 1, else in this thread (in blocks, as the
 * workers, with `inline` or `maxOutput`; else with `CompressionStream`).
 *
 * @param input The bytes.
 * @param options Format, level and workers.
 * @returns The compressed bytes.
 *
 * @example Usage
 * ```ts
 * import { compress, decompress, detectFormat } from "./codec.ts";
 * import type { CompressEnd } from "./parallel_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const core = new TextEncoder().encode("a core, or anything ".repeat(1000));
 * // In this thread, with CompressionStream.
 * const gz = await new Response(compress(ReadableStream.from([core]), { jobs: 1 }))
 *   .bytes();
 * assert.equal(detectFormat(gz), "gzip");
 * assert.deepEqual(await new Response(decompress(ReadableStream.from([gz]))).bytes(), core);
 *
 * // In blocks, as the workers compress, but in this thread; told where it ended.
 * const ends: CompressEnd[] = [];
 * const zz = compress(ReadableStream.from([core]), {
 *   format: "zlib",
 *   inline: true,
 *   onEnd: (end) => ends.push(end),
 * });
 * const bytes = await new Response(zz).bytes();
 * assert.equal(detectFormat(bytes), "zlib");
 * assert.deepEqual(ends, [{
 *   inputBytes: core.length,
 *   cut: false,
 *   spilledBlocks: 0,
 *   storedBlocks: 0,
 * }]);
 * // zlib output has no chunk index to write over its header.
 * assert.equal(zz.amendment.patch, undefined);
 * ```
 */
export function compress(
  input: ReadableStream<Uint8Array>,
  options: CompressAllOptions = {},
): CompressedStream {
  const { format = "gzip", level, jobs = navigator.hardwareConcurrency || 1 } =
    options;
  const { onEnd } = options;
  if (jobs > 1 || options.inline || options.maxOutput !== undefined) {
    return parallelCompress(input, {
      format,
      level: level ?? DEFAULT_PARALLEL_LEVEL,
      jobs,
      inline: options.inline ?? jobs <= 1,
      ...compact({
        index: options.index,
        fallback: options.fallback,
        onWarning: options.onWarning,
        maxOutput: options.maxOutput,
        onEnd,
      }),
    });
  }
  const engine = compressStream({
    format,
    ...compact({ level }),
  });
  // No chunk index without the parallel compressor: nothing to amend.
  const amendment = { patch: undefined };
  if (onEnd === undefined) {
    return Object.assign(input.pipeThrough(engine), { amendment });
  }
  // CompressionStream takes the whole input: only the count is needed.
  let inputBytes = 0;
  const stream = input
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          inputBytes += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    )
    .pipeThrough(engine)
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        flush() {
          onEnd({ inputBytes, cut: false, spilledBlocks: 0, storedBlocks: 0 });
        },
      }),
    );
  return Object.assign(stream, { amendment });
}

/**
 * The file name extension of a format: `.gz` or `.zz`.
 *
 * @example Usage
 * ```ts
 * import { formatExtension } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatExtension("gzip"), ".gz");
 * assert.equal(formatExtension("zlib"), ".zz");
 * ```
 *
 * @param format The format.
 * @returns Its extension, dot included.
 */
export function formatExtension(format: Format): string {
  return format === "gzip" ? ".gz" : ".zz";
}

/**
 * Tells the format of compressed data from its first bytes.
 *
 * @param head At least the first two bytes of the data.
 * @returns `"gzip"` for the gzip magic with method deflate, `"zlib"` for a
 * valid zlib header, undefined for anything else.
 *
 * @example Usage
 * ```ts
 * import { detectFormat } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(detectFormat(new Uint8Array([0x1f, 0x8b, 0x08])), "gzip");
 * assert.equal(detectFormat(new Uint8Array([0x78, 0x9c])), "zlib");
 * // An ELF core, not compressed.
 * assert.equal(detectFormat(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), undefined);
 * assert.equal(detectFormat(new Uint8Array([0x1f])), undefined);
 * ```
 */
export function detectFormat(head: Uint8Array): Format | undefined {
  const [b0, b1, b2] = head;
  if (b0 === undefined || b1 === undefined) return undefined;
  if (b0 === 0x1f && b1 === 0x8b && (b2 === undefined || b2 === 8)) {
    return "gzip";
  }
  // CM 8 (deflate), a window of at most 32 KiB, no preset dictionary, FCHECK.
  if (
    (b0 & 0x0f) === 8 && b0 >> 4 <= 7 && (b1 & 0x20) === 0 &&
    (b0 * 256 + b1) % 31 === 0
  ) {
    return "zlib";
  }
  return undefined;
}

/** Options for {@linkcode decompress}. */
export interface DecompressOptions {
  /**
   * How to name the input in error messages.
   *
   * @default {"the input"}
   */
  label?: string;
  /**
   * The input's size in bytes, when it is a file: a gzip member with a chunk
   * index that fits it (`gzip_index.ts`) is then inflated in parallel.
   *
   * @default {undefined}
   */
  size?: number;
  /**
   * Worker threads for an indexed gzip member; 1 inflates in this thread.
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
}

/**
 * Decompresses a gzip (one or more members) or zlib stream, telling the
 * format from the data. Checksums and lengths are verified; the returned
 * stream errors with {@linkcode ArchiveFormatError} on bad or truncated data.
 * A file written by the parallel compressor (one gzip member with a chunk
 * index) is inflated in parallel when its `size` is given.
 *
 * @param input The compressed bytes.
 * @param options How to name the input in messages; its size; workers.
 * @returns The decompressed bytes.
 *
 * @example Usage
 * ```ts
 * import { ArchiveFormatError, decompress } from "./codec.ts";
 * import { gzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * // Two gzip members, one after the other, as `cat a.gz b.gz` joins them.
 * const text = new TextEncoder();
 * const joined = new Uint8Array([
 *   ...gzipSync(text.encode("first, ")),
 *   ...gzipSync(text.encode("second")),
 * ]);
 * const out = decompress(ReadableStream.from([joined]));
 * assert.equal(await new Response(out).text(), "first, second");
 *
 * // Truncated: the stream errors, saying where it ends.
 * const cut = decompress(ReadableStream.from([joined.subarray(0, 20)]), {
 *   label: "'core.gz'",
 * });
 * await assert.rejects(Array.fromAsync(cut), ArchiveFormatError);
 * ```
 *
 * @example A file of the parallel compressor, inflated in parallel
 * ```ts
 * import { compress, decompress } from "./codec.ts";
 * import { writeFileAtomic } from "../fs/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Its chunk index is written over the header once the data is written.
 * const core = new Uint8Array(3 << 20).map((_, i) => (i >> 10) % 7);
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/core.gz`;
 * const gz = compress(ReadableStream.from([core]), {
 *   jobs: 2,
 *   index: { expectedSize: () => core.length },
 * });
 * await writeFileAtomic(path, gz, { amend: gz.amendment });
 *
 * using file = await Deno.open(path);
 * const { size } = await file.stat();
 * const out = decompress(file.readable, { size, jobs: 2 });
 * assert.deepEqual(await new Response(out).bytes(), core);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function decompress(
  input: ReadableStream<Uint8Array>,
  options: DecompressOptions = {},
): ReadableStream<Uint8Array> {
  return ReadableStream.from(inflate(input, options));
}

async function* inflate(
  input: ReadableStream<Uint8Array>,
  options: DecompressOptions,
): AsyncGenerator<Uint8Array> {
  const label = options.label ?? "the input";
  const jobs = options.jobs ?? (navigator.hardwareConcurrency || 1);
  const source = openByteSource(input);
  let head: Uint8Array;
  try {
    head = await source.fill(new Uint8Array(12));
  } catch (error) {
    source.release();
    throw error;
  }
  if (head.length === 0) {
    source.release();
    throw new ArchiveFormatError(
      `Cannot decompress ${label}: it is empty, expected a gzip or zlib stream`,
    );
  }
  const format = detectFormat(head);
  if (format === undefined) {
    source.release();
    throw new ArchiveFormatError(
      `Cannot decompress ${label}: found bytes ${
        toHex(head.subarray(0, 3), " ")
      } at offset 0, expected a gzip (1f 8b 08) or zlib (78 xx) header`,
    );
  }
  if (format === "gzip" && options.size !== undefined && jobs > 1) {
    const end = extraFieldEnd(head);
    if (end > head.length) {
      head = concat(head, await source.fill(new Uint8Array(end - head.length)));
    }
    const index = readGzipIndex(head, options.size);
    if (index !== undefined && index.chunkSize <= MAX_PARALLEL_CHUNK) {
      try {
        yield* parallelInflate(source, index, { jobs });
        return;
      } catch (error) {
        if (!(error instanceof ChunkError)) throw error;
        throw new ArchiveFormatError(
          `Cannot decompress ${label}: ${error.message}`,
          { cause: error },
        );
      } finally {
        source.release();
      }
    }
  }
  source.unread(head);
  let consumed = 0;
  // The last four input bytes: a zlib stream must end with its Adler-32.
  let tail: Uint8Array = new Uint8Array(0);
  const compressed = ReadableStream.from((async function* () {
    try {
      for (;;) {
        const chunk = await source.read();
        if (chunk === undefined) return;
        yield chunk;
        consumed += chunk.length;
        tail = concat(tail, chunk.subarray(-4)).subarray(-4);
      }
    } finally {
      source.release();
    }
  })());
  const engine = toWebTransform(
    // Large output chunks: far fewer trips through the streams.
    format === "gzip"
      ? createGunzip({ chunkSize: 1 << 20 })
      : createInflate({ chunkSize: 1 << 20 }),
  );
  let adler = 1;
  try {
    for await (const chunk of compressed.pipeThrough(engine)) {
      if (format === "zlib") adler = adler32(adler, chunk);
      yield chunk;
    }
  } catch (error) {
    throw describeInflateError(error, format, label, consumed);
  }
  // The engine stops at the end of the zlib stream and ignores what follows.
  if (
    format === "zlib" &&
    (tail.length < 4 ||
      new DataView(tail.buffer, tail.byteOffset).getUint32(0) !== adler)
  ) {
    throw new ArchiveFormatError(
      `Cannot decompress ${label}: found data after the end of the zlib stream (its last 4 bytes are not the Adler-32 ${
        adler.toString(16).padStart(8, "0")
      }), expected the input to end with the stream`,
    );
  }
}

/** Turns a zlib engine error into a message a person can act on. */
function describeInflateError(
  error: unknown,
  format: Format,
  label: string,
  consumed: number,
): unknown {
  if (!(error instanceof Error) || !("code" in error)) return error;
  const what = `Cannot decompress ${label}`;
  const message = error.message;
  let text: string;
  if (error.code === "Z_BUF_ERROR" || /unexpected end/i.test(message)) {
    text =
      `the ${format} stream is truncated: the input ends at byte ${consumed}, expected more compressed data and the ${
        format === "gzip" ? "CRC-32 and length" : "Adler-32"
      } trailer`;
  } else if (/incorrect data check/.test(message)) {
    text = format === "gzip"
      ? "the CRC-32 of the data does not match the gzip trailer, expected equal values (the file is corrupt)"
      : "the Adler-32 of the data does not match the zlib trailer, expected equal values (the file is corrupt)";
  } else if (/incorrect length check/.test(message)) {
    text =
      "the length of the data does not match the gzip trailer, expected equal values (the file is corrupt)";
  } else if (/incorrect header check/.test(message)) {
    text =
      `found data that is not a gzip member after the end of the ${format} stream, expected another member (1f 8b) or the end of the input`;
  } else {
    text =
      `corrupt deflate data (${message}), expected a valid ${format} stream`;
  }
  return new ArchiveFormatError(`${what}: ${text}`, { cause: error });
}
