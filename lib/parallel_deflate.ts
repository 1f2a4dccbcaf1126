/**
 * Parallel compression into ONE standard gzip member (or one zlib stream),
 * joined the way pigz joins it: the input is cut in blocks, each block is
 * deflated in a worker and ends in a sync flush, and the blocks are joined
 * in order, closed by an empty final block. gzip, zcat and 7-Zip read the
 * result whole.
 *
 * Unlike pigz, a block does not use the previous 32 KiB as a dictionary:
 * Deno's `node:zlib` ignores the `dictionary` option of raw deflate (seen
 * with Deno 2.9.6: the output is byte for byte the same with and without
 * it), and the 1 MiB blocks lose little by it (within 2% of `gzip -6` on
 * the benchmark's cores). It has a use: every block can be inflated on its
 * own, so a gzip file written to a file carries an index of its chunks in
 * its header (`gzip_index.ts`) and is inflated in parallel too.
 *
 * Blocks of zeros (the zero pages that fill cores) are not deflated at all:
 * their deflate data is built once per block size and reused, and they are
 * folded into the CRC-32 or Adler-32 arithmetically. Blocks come from a
 * small pool of buffers that the workers hand back, filled by BYOB reads
 * where the input allows them: memory is bounded by the blocks in flight,
 * not by the input, and no buffer is allocated per block.
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import { adler32Combine, adler32Zeros, crc32, crc32Zeros } from "./checksum.ts";
import type { DeflateResult, DeflateTask } from "./_deflate_worker.ts";
import type { FilePatch } from "./atomic_file.ts";
import {
  indexBuilder,
  indexedGzipHeader,
  MAX_INDEX_CAPACITY,
  plainGzipHeader,
} from "./gzip_index.ts";
import { zlibHeader } from "./zlib.ts";
import { isZero } from "./_bytes.ts";
import { openByteSource } from "./_byte_source.ts";
import { startWorkers } from "./_worker_pool.ts";

/** Bytes per block: large enough to keep message overhead small. */
export const BLOCK_SIZE = 1 << 20;
/** Index capacity when the input's size is not known: 1 GiB at 1 MiB. */
const DEFAULT_INDEX_CAPACITY = 1024;
/** An empty final fixed-Huffman block: closes the deflate stream. */
const FINAL_BLOCK = new Uint8Array([0x03, 0x00]);

/** Options for {@linkcode parallelCompress}. */
export interface ParallelCompressOptions {
  /**
   * The container.
   *
   * @default {"gzip"}
   */
  format?: "gzip" | "zlib";
  /**
   * Deflate level 1 to 9.
   *
   * @default {5}
   */
  level?: number;
  /**
   * Worker threads.
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
  /**
   * Bytes per block.
   *
   * @default {1048576}
   */
  blockSize?: number;
  /**
   * Reserve room for a chunk index in the gzip header (`gzip_index.ts`) and
   * hand it over at the end, to be written over the header: for output to a
   * file. Ignored for zlib.
   *
   * @default {undefined}
   */
  index?: IndexOptions;
}

/** Where the index goes, and how large the input is expected to be. */
export interface IndexOptions {
  /**
   * The input's size when known, asked once the first block has been read
   * (by then a core's headers have declared it): the index gets exactly the
   * room it needs.
   */
  expectedSize?: () => number | undefined;
  /** Receives the index before the stream closes. */
  onPatch(patch: FilePatch): void;
}

/** A block on its way out, in input order. */
interface Slot {
  length: number;
  /** Deflate data ready to go (zero blocks), or the worker's answer. */
  deflated?: Uint8Array;
  adler: number;
  ready: Promise<void>;
}

/**
 * Compresses a stream with `jobs` workers into one gzip member or zlib
 * stream.
 *
 * @param input The bytes to compress; read with BYOB reads when it is a
 * byte stream (files, stdin).
 * @param options Format, level, workers and block size.
 * @returns The compressed bytes.
 *
 * @example Usage
 * ```ts ignore
 * import { parallelCompress } from "./parallel_deflate.ts";
 * const file = await Deno.open("core");
 * const gz = parallelCompress(file.readable, { jobs: 2 });
 * ```
 */
export function parallelCompress(
  input: ReadableStream<Uint8Array>,
  options: ParallelCompressOptions = {},
): ReadableStream<Uint8Array> {
  const {
    format = "gzip",
    level = 5,
    jobs = navigator.hardwareConcurrency || 1,
    blockSize = BLOCK_SIZE,
  } = options;
  const zlibFormat = format === "zlib";
  const workers = startWorkers<DeflateTask, DeflateResult>(
    new URL("./_deflate_worker.ts", import.meta.url),
    jobs,
  );
  const maxPending = workers.size * 2;
  const pool: ArrayBuffer[] = [];
  const stop = () => workers.stop();

  const source = openByteSource(input);
  const queue: Slot[] = [];
  let pending = 0;
  let nextId = 0;
  const index = zlibFormat ? undefined : options.index;
  let builder: ReturnType<typeof indexBuilder> | undefined;
  let started = false;
  let crc = 0;
  let adler = 1;
  let total = 0;
  let inputDone = false;

  /** Reads the next block into a pooled buffer; undefined at the end. */
  const nextBlock = async (): Promise<Uint8Array | undefined> => {
    const buffer = pool.pop() ?? new ArrayBuffer(blockSize);
    const block = await source.fill(new Uint8Array(buffer, 0, blockSize));
    if (block.length === 0) {
      // BYOB reads move the memory to a new ArrayBuffer: keep that one.
      if (block.buffer.byteLength === blockSize) {
        pool.push(block.buffer as ArrayBuffer);
      }
      return undefined;
    }
    return block;
  };

  const submit = (block: Uint8Array) => {
    total += block.length;
    const length = block.length;
    if (isZero(block)) {
      if (!zlibFormat) crc = crc32Zeros(crc, length);
      pool.push(block.buffer as ArrayBuffer);
      queue.push({
        length,
        deflated: zeroBlock(length, level),
        adler: -1,
        ready: Promise.resolve(),
      });
      return;
    }
    if (!zlibFormat) crc = crc32(crc, block);
    const id = nextId++;
    const slot: Slot = { length, adler: 1, ready: Promise.resolve() };
    pending++;
    const task: DeflateTask = { id, data: block, level, adler: zlibFormat };
    slot.ready = workers.run(task, [block.buffer as ArrayBuffer]).then(
      (result) => {
        slot.deflated = result.deflated;
        slot.adler = result.adler;
        // The worker hands the input buffer back for the next block.
        if (result.data.byteLength === blockSize) pool.push(result.data);
        pending--;
      },
    );
    queue.push(slot);
  };

  /**
   * The header, once the first block tells whether the input fills more
   * than one block: smaller inputs get no index.
   */
  const header = (first: Uint8Array | undefined): Uint8Array => {
    if (zlibFormat) return zlibHeader(level);
    if (index === undefined || first?.length !== blockSize) {
      return plainGzipHeader({ level });
    }
    const expected = index.expectedSize?.();
    const wanted = expected === undefined
      ? DEFAULT_INDEX_CAPACITY
      : Math.ceil(expected / blockSize);
    const capacity = Math.min(
      MAX_INDEX_CAPACITY,
      Math.max(2, wanted + (wanted % 2)),
    );
    builder = indexBuilder(capacity, { blockSize, level });
    return indexedGzipHeader(capacity, { level, blockSize });
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!started) {
          started = true;
          const first = await nextBlock();
          controller.enqueue(header(first));
          if (first === undefined) inputDone = true;
          else submit(first);
        }
        for (;;) {
          // Emit what is ready at the head, in order.
          let emitted = false;
          while (queue[0]?.deflated !== undefined) {
            const slot = queue.shift()!;
            if (zlibFormat) {
              adler = slot.adler === -1
                ? adler32Zeros(adler, slot.length)
                : adler32Combine(adler, slot.adler, slot.length);
            }
            controller.enqueue(slot.deflated!);
            builder?.add(slot.deflated!.length, slot.length);
            emitted = true;
          }
          if (emitted) return;
          if (!inputDone && pending < maxPending) {
            const block = await nextBlock();
            if (block === undefined) inputDone = true;
            else submit(block);
            continue;
          }
          if (queue.length > 0) {
            await queue[0]!.ready;
            continue;
          }
          controller.enqueue(FINAL_BLOCK);
          if (builder !== undefined) {
            builder.add(FINAL_BLOCK.length, 0);
            index!.onPatch(builder.patch());
          }
          const trailer = new Uint8Array(zlibFormat ? 4 : 8);
          const view = new DataView(trailer.buffer);
          if (zlibFormat) {
            view.setUint32(0, adler, false);
          } else {
            view.setUint32(0, crc, true);
            view.setUint32(4, total % 2 ** 32, true);
          }
          controller.enqueue(trailer);
          controller.close();
          stop();
          return;
        }
      } catch (error) {
        stop();
        throw error;
      }
    },
    async cancel(reason) {
      stop();
      await source.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

const zeroBlocks = new Map<string, Uint8Array>();

/**
 * Deflate data of a block of zeros, built once per size and level: what
 * the compressor writes for every block of zeros, and how the decompressor
 * recognises one.
 *
 * @param length The block's length.
 * @param level The deflate level.
 * @returns Raw deflate data ending in a sync flush.
 */
export function zeroBlock(length: number, level: number): Uint8Array {
  const key = `${length}/${level}`;
  let deflated = zeroBlocks.get(key);
  if (deflated === undefined) {
    deflated = new Uint8Array(
      deflateRawSync(new Uint8Array(length), {
        level,
        finishFlush: constants.Z_SYNC_FLUSH,
      }),
    );
    if (zeroBlocks.size < 8) zeroBlocks.set(key, deflated);
  }
  return deflated;
}
