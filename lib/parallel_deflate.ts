/**
 * Parallel compression into ONE standard gzip member (or one zlib stream),
 * as pigz does it: the input is cut in blocks, each block is deflated in a
 * worker with the previous 32 KiB as its dictionary and ends in a sync
 * flush, and the blocks are joined in order, closed by an empty final block.
 * gzip, zcat and 7-Zip read the result whole.
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
import { zlibHeader } from "./zlib.ts";
import { isZero } from "./_bytes.ts";

/** Bytes per block: large enough to keep message overhead small. */
export const BLOCK_SIZE = 1 << 20;
/** The deflate window: each block's dictionary is the 32 KiB before it. */
const WINDOW = 32 << 10;
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
  const workers = Array.from(
    { length: Math.max(1, jobs) },
    () =>
      new Worker(new URL("./_deflate_worker.ts", import.meta.url).href, {
        type: "module",
      }),
  );
  const maxPending = workers.length * 2;
  const pool: ArrayBuffer[] = [];
  const answers = new Map<number, (result: DeflateResult) => void>();
  for (const worker of workers) {
    worker.onmessage = (event: MessageEvent<DeflateResult>) => {
      const answer = answers.get(event.data.id);
      answers.delete(event.data.id);
      answer?.(event.data);
    };
  }
  const stop = () => workers.forEach((w) => w.terminate());

  const source = openReader(input);
  const queue: Slot[] = [];
  let pending = 0;
  let nextId = 0;
  let tail: Uint8Array | undefined;
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
    const dictionary = tail;
    tail = block.slice(Math.max(0, block.length - WINDOW));
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
    slot.ready = new Promise<void>((resolve) =>
      answers.set(id, (result) => {
        slot.deflated = result.deflated;
        slot.adler = result.adler;
        // The worker hands the input buffer back for the next block.
        if (result.data.byteLength === blockSize) pool.push(result.data);
        pending--;
        resolve();
      })
    );
    pending++;
    const task: DeflateTask = {
      id,
      data: block,
      dictionary,
      level,
      adler: zlibFormat,
    };
    workers[id % workers.length]!.postMessage(task, [
      block.buffer as ArrayBuffer,
    ]);
    queue.push(slot);
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(
        zlibFormat ? zlibHeader(level) : new Uint8Array([
          0x1f,
          0x8b,
          8,
          0,
          0,
          0,
          0,
          0,
          level >= 9 ? 2 : level <= 1 ? 4 : 0,
          3,
        ]),
      );
    },
    async pull(controller) {
      try {
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

/** Fills buffers from a stream: BYOB reads when possible, else copies. */
function openReader(input: ReadableStream<Uint8Array>) {
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = input.getReader({ mode: "byob" });
  } catch {
    reader = input.getReader();
  }
  let rest: Uint8Array | undefined;
  let done = false;
  return {
    /** Fills `view` as far as the input goes; returns the filled part. */
    async fill(view: Uint8Array): Promise<Uint8Array> {
      // A BYOB read detaches the buffer it is given and answers with a view
      // of the same memory in a new one: track it by size, not by `view`.
      const size = view.length;
      let filled = 0;
      while (filled < size && !done) {
        if (byob !== undefined) {
          const result = await byob.read(
            new Uint8Array(
              view.buffer,
              view.byteOffset + filled,
              size - filled,
            ),
          );
          if (result.value !== undefined) {
            view = new Uint8Array(result.value.buffer, 0, size);
            filled += result.value.length;
          }
          if (result.done) done = true;
        } else {
          if (rest === undefined || rest.length === 0) {
            const result = await reader!.read();
            if (result.done) {
              done = true;
              break;
            }
            rest = result.value;
          }
          const take = Math.min(rest.length, size - filled);
          view.set(rest.subarray(0, take), filled);
          rest = rest.subarray(take);
          filled += take;
        }
      }
      return view.subarray(0, filled);
    },
    async cancel(reason: unknown) {
      await (byob ?? reader)!.cancel(reason).catch(() => {});
    },
  };
}

/** Deflate data of a block of zeros, built once per size and level. */
const zeroBlocks = new Map<string, Uint8Array>();
function zeroBlock(length: number, level: number): Uint8Array {
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
