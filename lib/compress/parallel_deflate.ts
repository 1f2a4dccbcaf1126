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

import {
  adler32Combine,
  adler32Zeros,
  crc32,
  crc32Combine,
  crc32Zeros,
} from "./checksum.ts";
import {
  deflateBlock,
  looksIncompressible,
  storedLength,
} from "./_deflate_block.ts";
import type { DeflateResult, DeflateTask } from "./_deflate_worker.ts";
import type { Amendment, FilePatch, SpillFile } from "../fs/mod.ts";
import {
  indexBuilder,
  indexedGzipHeader,
  MAX_INDEX_CAPACITY,
  plainGzipHeader,
} from "./gzip_index.ts";
import { zlibHeader } from "./zlib.ts";
import {
  compact,
  disposableChunk,
  garbageMeter,
  isZero,
  openByteSource,
  startWorkers,
  TaskFailedError,
  WorkerFailedError,
  type WorkerPool,
} from "../util/mod.ts";

export { TaskFailedError, WorkerFailedError } from "../util/mod.ts";

/** Blocks handed over by the workers die young once written. */
const collect = garbageMeter({ threshold: 8 << 20, minor: true });

/** Bytes per block: large enough to keep message overhead small. */
export const BLOCK_SIZE = 1 << 20;
/** Index capacity when the input's size is not known: 1 GiB at 1 MiB. */
const DEFAULT_INDEX_CAPACITY = 1024;
/** An empty final fixed-Huffman block: closes the deflate stream. */
const FINAL_BLOCK = new Uint8Array([0x03, 0x00]);
const WORKER_LABEL = "compression worker";
/** Most blocks read and not yet emitted while blocks spill: 16 GiB at 1 MiB. */
const MAX_SPILL_QUEUE = 1 << 14;

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
   * The level of each block, asked just before it is deflated, instead of
   * `level` (which the header still names): a capture drops to a faster
   * level while the kernel waits on a full pipe.
   *
   * @default {undefined}
   */
  blockLevel?: () => number;
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
  /**
   * Deflate every block in this thread, with the same code as the workers
   * (the output is byte for byte the same), starting no worker; `jobs` is
   * then ignored.
   *
   * @default {false}
   */
  inline?: boolean;
  /**
   * What to do when the workers fail (one cannot be started, one stops
   * answering, or a block fails in one): `"inline"` goes on in this thread,
   * re-deflating the blocks the workers handed back, and reports it once
   * through `onWarning` (a block whose bytes went down with a worker errors
   * the stream instead: never wrong data); `"error"` errors the stream with
   * the {@linkcode WorkerFailedError}.
   *
   * @default {"error"}
   */
  fallback?: "inline" | "error";
  /**
   * Receives the one warning of `fallback: "inline"`, a line without a
   * final period.
   *
   * @default {undefined}
   */
  onWarning?: (message: string) => void;
  /**
   * The most bytes the whole output may take, header, final block and
   * trailer included; asked before each block is emitted, with `needed`,
   * the whole output's size if the block is emitted (its final block and
   * trailer included), so that a budget can grow to it (the answer may be
   * a promise: the stream waits for it). A block that would
   * pass the answer is not emitted: the stream ends there, complete (final
   * block, then the checksum and length of exactly the blocks emitted),
   * cancels its input and stops its workers. The output stays within it
   * whenever it leaves room for the header, the final block and the
   * trailer; a chunk index that would not fit is left out (asked first,
   * with the indexed header's `needed`).
   *
   * @default {undefined}
   */
  maxOutput?: (needed: number) => number | Promise<number>;
  /**
   * Called once, before the stream closes (not when it errors or is
   * cancelled): how many input bytes the output holds, and whether
   * `maxOutput` cut it.
   *
   * @default {undefined}
   */
  onEnd?: (end: CompressEnd) => void;
  /**
   * Where blocks wait, on disk, while every worker is busy: reading goes
   * on instead of waiting for a worker, as long as the file takes them
   * (its limit, free space). The blocks are deflated in order, taken back
   * as workers free up. For an input whose writer waits on the reader (a
   * crashed process frozen until its core is read); ignored with `inline`.
   * With it, blocks that will not shrink are stored by this thread, never
   * sent to a worker (a copy costs less than the trip), and reading waits
   * for a slow output rather than spill them; the first block is deflated
   * here too, while the workers start (or before they do, with
   * `deferWorkers`). The output is the same, byte for byte.
   *
   * @default {undefined}
   */
  spill?: SpillFile;
  /**
   * The nice value of the workers' threads (0 to 19), so that the thread
   * that reads the input runs first: with `spill`, reading is what the
   * writer waits for.
   *
   * @default {undefined}
   */
  workerNice?: number;
  /**
   * With `spill`: whether to start the workers later. While they are not
   * started it is asked whenever a block that needs a worker is read, and
   * whenever such a block waits and one is emitted or the output looks for
   * the next: while it says so and the spill file takes the block, the
   * block waits there. The workers start once it says no, once the spill
   * file cannot take a block, or at the end of the input. It is not asked
   * between those events, so it should say so only while input is ready
   * to be read (a read follows soon). Starting a worker holds this thread
   * some 15 ms (Deno builds its isolate before `new Worker` returns):
   * while a crashed process waits on the reads, that is time the kernel
   * waits, for blocks that would spill anyway.
   *
   * @default {undefined}
   */
  deferWorkers?: () => boolean;
}

/** How a compression ended, for {@linkcode ParallelCompressOptions.onEnd}. */
export interface CompressEnd {
  /** Input bytes in the output: a prefix of the input. */
  inputBytes: number;
  /** Whether `maxOutput` ended the output before the input's end. */
  cut: boolean;
  /** Blocks that waited in the `spill` file. */
  spilledBlocks: number;
  /**
   * Blocks that would not shrink, stored by the thread that reads (with
   * `spill`) instead of waiting for a worker.
   */
  storedBlocks: number;
}

/** Where the index goes, and how large the input is expected to be. */
export interface IndexOptions {
  /**
   * The input's size when known, asked once the first block has been read
   * (by then a core's headers have declared it): the index gets exactly the
   * room it needs.
   */
  expectedSize?: () => number | undefined;
}

/**
 * The compressed bytes, and the handle on the chunk index to write over
 * the header once they are all written (with `index`; else none).
 */
export interface CompressedStream extends ReadableStream<Uint8Array> {
  /** Pass to `writeFileAtomic`'s `amend`. */
  readonly amendment: Amendment;
}

/** A block on its way out, in input order. */
interface Slot {
  /** The block's place in the input, for messages. */
  offset: number;
  length: number;
  /** The block's own CRC-32 (gzip). */
  crc: number;
  /** The level it is deflated at. */
  level: number;
  /** Deflate data ready to go (zero blocks), or the worker's answer. */
  deflated?: Uint8Array;
  /** The block's own Adler-32 (zlib); -1 for a block of zeros. */
  adler: number;
  /** The input, while a worker has it (detached once posted). */
  block?: Uint8Array | undefined;
  /**
   * With `maxOutput`: the input kept until the block is emitted, so that a
   * block that does not fit can still give the prefix that does.
   */
  kept?: Uint8Array | undefined;
  /** Why the worker did not deflate it. */
  failure?: unknown;
  /** It was given to a worker, and counts in `given` until emitted. */
  given?: boolean;
  /** Stored by this thread: counts in `storedHeld` until emitted. */
  storedHere?: boolean;
  /** It will not shrink (`spill` only): stored by this thread, not a worker. */
  incompressible?: boolean;
  /** Settles `ready` of a block that waits for a worker. */
  settle?: (() => void) | undefined;
  /** Settles (never rejects) when `deflated` or `failure` is set. */
  ready: Promise<void>;
}

/**
 * Compresses a stream with `jobs` workers into one gzip member or zlib
 * stream.
 *
 * @param input The bytes to compress; read with BYOB reads when it is a
 * byte stream (files, stdin).
 * @param options Format, level, workers, block size, what to do when the
 * workers fail, and the most output.
 * @returns The compressed bytes. It errors with a
 * {@linkcode WorkerFailedError} when the workers fail (and `fallback` is
 * `"error"`, or a block was lost with them).
 *
 * @example Usage
 * ```ts
 * import { parallelCompress } from "./parallel_deflate.ts";
 * import { gunzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * // Four blocks of 64 KiB, one of them zeros, deflated by two workers.
 * const core = new Uint8Array(4 << 16).map((_, i) =>
 *   i >> 16 === 2 ? 0 : (i * 7) % 64
 * );
 * const gz = await new Response(
 *   parallelCompress(ReadableStream.from([core]), { jobs: 2, blockSize: 1 << 16 }),
 * ).bytes();
 * // One gzip member, as gzip reads it.
 * assert.deepEqual(new Uint8Array(gunzipSync(gz)), core);
 * ```
 *
 * @example Output cut at a budget
 * ```ts
 * import { type CompressEnd, parallelCompress } from "./parallel_deflate.ts";
 * import { gunzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * // Random bytes do not shrink: about 4 KiB of output per block.
 * const core = crypto.getRandomValues(new Uint8Array(4 * 4096));
 * const ends: CompressEnd[] = [];
 * const gz = await new Response(
 *   parallelCompress(ReadableStream.from([core]), {
 *     inline: true,
 *     blockSize: 4096,
 *     maxOutput: () => 10_000,
 *     onEnd: (end) => ends.push(end),
 *   }),
 * ).bytes();
 * assert.ok(gz.length <= 10_000);
 * assert.equal(ends.length, 1);
 * const [{ inputBytes, cut }] = ends as [CompressEnd];
 * assert.equal(cut, true);
 * assert.ok(inputBytes >= 2 * 4096 && inputBytes < 3 * 4096);
 * // Complete: the input that fits (two blocks and part of the third), with
 * // its checksum and length.
 * assert.deepEqual(new Uint8Array(gunzipSync(gz)), core.subarray(0, inputBytes));
 * ```
 */
export function parallelCompress(
  input: ReadableStream<Uint8Array>,
  options: ParallelCompressOptions = {},
): CompressedStream {
  const amendment: { patch: FilePatch | undefined } = { patch: undefined };
  const {
    format = "gzip",
    level = 5,
    jobs = navigator.hardwareConcurrency || 1,
    blockSize = BLOCK_SIZE,
    inline = false,
    fallback = "error",
    maxOutput,
    workerNice,
  } = options;
  const spill = inline ? undefined : options.spill;
  const zlibFormat = format === "zlib";
  const trailerLength = zlibFormat ? 4 : 8;
  const deferrable = !inline && spill !== undefined &&
    options.deferWorkers !== undefined;
  /** The workers, once started (never with `inline`). */
  let workers: WorkerPool<DeflateTask, DeflateResult> | undefined;
  const maxPending = (inline ? 1 : Math.max(1, jobs)) * 2;
  const pool: ArrayBuffer[] = [];
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    workers?.stop();
  };

  const source = openByteSource(input);
  const queue: Slot[] = [];
  let pending = 0;
  let nextId = 0;
  const index = zlibFormat ? undefined : options.index;
  let builder: ReturnType<typeof indexBuilder> | undefined;
  let started = false;
  let crc = 0;
  let adler = 1;
  let read = 0; // input bytes read
  let emittedInput = 0;
  let written = 0; // output bytes enqueued
  let inputDone = false;
  /** Blocks read that wait for a worker, in input order. */
  const waiting: Slot[] = [];
  let spilledBlocks = 0;
  /** Of those, the blocks that the spill file did not take (it failed). */
  let waitingInMemory = 0;
  /** Of those, the blocks that a worker is to deflate. */
  let waitingToDeflate = 0;
  let storedBlocks = 0;
  /**
   * Bytes stored by this thread (with `spill`) and not yet emitted: about
   * `maxPending` blocks' worth, behind a block not deflated yet.
   */
  let storedHeld = 0;
  const storeBudget = maxPending * blockSize;
  /**
   * Blocks given to a worker and not yet emitted: with `maxOutput`, each
   * keeps its input until it is emitted. Blocks that wait are given only
   * while these are fewer than `maxQueue`, so that memory stays bounded
   * when the output is slow to be taken.
   */
  let given = 0;
  /** In this thread from now on: `inline`, or after the workers failed. */
  let inThread = inline;

  /**
   * Blocks read and not yet emitted, at most: bounds memory. As many as
   * can be in flight: a capture of the 1 GiB mixed core peaked at 128-152
   * MB (median 146) with it, 151-164 (median 156) with twice as many, in
   * the same time (-c from stdin, and crash to release through the kernel).
   */
  const maxQueue = maxPending;
  /** The reading loop, while it runs; reads go on while the output is written. */
  let ahead: Promise<void> | undefined;
  /** What the reading loop met, for the next pull to throw. */
  let failure: unknown;
  /** The output is complete, cut or cancelled: read no more. */
  let closed = false;

  /**
   * Reads and submits blocks while there is room, beside the consumer: the
   * workers get their next blocks while the last ones are being written.
   */
  const room = () =>
    started && !inputDone && !closed && failure === undefined &&
    !outputBound() &&
    (pending < maxPending && queue.length < maxQueue || spillRoom());
  /**
   * Blocks stored here fill their budget and no block waits for a worker:
   * the output is what is slow (it is written in this thread too), and the
   * next block would only go through the spill file and back for nothing.
   * Reading waits for it.
   */
  const outputBound = () =>
    storedHeld >= storeBudget && pending === 0 && waitingToDeflate === 0;
  /** Whether the next block may wait in the spill file. */
  const spillRoom = () =>
    spill !== undefined && !inThread && spill.failure === undefined &&
    spill.free >= blockSize && queue.length < MAX_SPILL_QUEUE &&
    waitingInMemory === 0;
  /** Wakes an output that found nothing queued, once a block is. */
  let queued: (() => void) | undefined;
  const readAhead = (): Promise<void> | undefined => {
    if (ahead === undefined && !room()) return undefined;
    ahead ??= (async () => {
      try {
        while (room()) {
          const block = await nextBlock();
          if (closed) break;
          if (block === undefined) inputDone = true;
          else {
            submit(block);
            queued?.();
            queued = undefined;
          }
        }
      } catch (error) {
        failure = error;
      } finally {
        ahead = undefined;
      }
    })();
    return ahead;
  };

  /** `fallback: "inline"` after a failure: this thread takes over. */
  const takeOver = (error: WorkerFailedError) => {
    if (inThread) return;
    inThread = true;
    options.onWarning?.(
      `the compression workers failed (${error.module}: ${error.reason}); compressed in the main thread instead`,
    );
    if (pending === 0) stop();
  };
  /** Starts the workers, unless they run, or the output is done. */
  const startPool = () => {
    if (inline || workers !== undefined || closed) return;
    workers = startWorkers<DeflateTask, DeflateResult>(
      new URL("./_deflate_worker.ts", import.meta.url),
      jobs,
      { label: WORKER_LABEL },
    );
    if (fallback === "inline") {
      workers.ready.catch((error: WorkerFailedError) => {
        // Stopped before they started (a short input): no failure.
        if (!closed) takeOver(error);
      });
    }
  };
  if (!deferrable) startPool();
  /**
   * Whether a block that needs a worker waits in the spill file instead,
   * the workers not being started yet (`deferWorkers`); else they start.
   */
  const deferred = () => {
    if (workers !== undefined || inThread) return false;
    if (!inputDone && spillRoom() && options.deferWorkers!()) return true;
    startPool();
    return false;
  };

  /** Reads the next block into a pooled buffer; undefined at the end. */
  const nextBlock = async (): Promise<Uint8Array | undefined> => {
    const buffer = pool.pop() ?? new ArrayBuffer(blockSize);
    const block = await source.fill(new Uint8Array(buffer, 0, blockSize));
    if (block.length === 0) {
      // BYOB reads move the memory to a new ArrayBuffer: keep that one.
      recycle(block);
      return undefined;
    }
    return block;
  };

  /** Recycles a block's buffer, or keeps it for a cut (`maxOutput`). */
  const release = (slot: Slot, block: Uint8Array) => {
    if (maxOutput !== undefined) slot.kept = block;
    else recycle(block);
  };

  /** Memory for the blocks stored here, handed back once written. */
  const storedPool: ArrayBuffer[] = [];
  const storedCapacity = storedLength(blockSize);
  /** Keeps what the stored blocks in flight need; frees the rest. */
  const reuseStored = (buffer: ArrayBuffer) => {
    if (
      !closed && buffer.byteLength === storedCapacity &&
      storedPool.length * blockSize < storeBudget
    ) storedPool.push(buffer);
    else buffer.transfer(0);
  };

  /**
   * Complete, cut, cancelled or failed: nothing more is read, given to a
   * worker or kept for reuse.
   */
  const shutDown = () => {
    closed = true;
    waiting.length = 0;
    storedPool.length = 0;
    stop();
  };

  /** Gives a block's buffer back to the pool, when it is a whole one. */
  const recycle = (block: Uint8Array) => {
    if (block.buffer.byteLength === blockSize) {
      pool.push(block.buffer as ArrayBuffer);
    }
  };

  /** Deflates in this thread and recycles the block's buffer. */
  const deflateHere = (slot: Slot, block: Uint8Array) => {
    const result = deflateBlock(block, {
      level: slot.level,
      adler: zlibFormat,
      incompressible: slot.incompressible,
    });
    slot.deflated = disposableChunk(result.deflated);
    slot.adler = result.adler;
    release(slot, block);
  };

  /**
   * The longest prefix of a block whose deflate data fits in `room` bytes,
   * deflated here; undefined when none (or the bytes are gone).
   */
  const fitPrefix = (slot: Slot, room: number) => {
    const data = slot.kept ??
      (slot.adler === -1 ? new Uint8Array(slot.length) : undefined);
    if (data === undefined || room < 64) return undefined;
    let length = Math.min(
      slot.length - 1,
      Math.floor(slot.length * room / slot.deflated!.length * 0.98),
    );
    for (let attempt = 0; attempt < 8 && length > 0; attempt++) {
      const prefix = data.subarray(0, length);
      const result = deflateBlock(prefix, {
        level: slot.level,
        adler: zlibFormat,
      });
      if (result.deflated.length <= room) {
        return {
          length,
          deflated: disposableChunk(result.deflated),
          adler: result.adler,
          crc: zlibFormat ? 0 : crc32(0, prefix),
        };
      }
      length = Math.floor(length * room / result.deflated.length * 0.97);
    }
    return undefined;
  };

  const submit = (block: Uint8Array) => {
    const offset = read;
    read += block.length;
    const length = block.length;
    if (isZero(block)) {
      pool.push(block.buffer as ArrayBuffer);
      queue.push({
        offset,
        length,
        crc: zlibFormat ? 0 : crc32Zeros(0, length),
        level,
        deflated: zeroBlock(length, level),
        adler: -1,
        ready: Promise.resolve(),
      });
      return;
    }
    const slot: Slot = {
      offset,
      length,
      crc: zlibFormat ? 0 : crc32(0, block),
      level: options.blockLevel?.() ?? level,
      adler: 1,
      ready: Promise.resolve(),
    };
    queue.push(slot);
    if (inThread) {
      deflateHere(slot, block);
      return;
    }
    // With a spill (a writer waits on the reads), a block that will not
    // shrink is stored here, never by a worker: a copy costs less than the
    // trip, and the workers are left the blocks that need them. It is
    // stored at once unless the blocks stored here and not yet out fill
    // their budget; it then waits in the spill file (behind a block that
    // is being deflated) and is stored when taken back. Same bytes as a
    // worker writes.
    if (spill !== undefined) {
      slot.incompressible = looksIncompressible(block);
      if (slot.incompressible && storedHeld < storeBudget) {
        storeHere(slot, block);
        return;
      }
      // The first block is deflated here too: the workers are still
      // starting (80 to 170 ms measured, the longer through the kernel),
      // or not started (`deferWorkers`), and every block read behind it
      // would wait for them.
      if (offset === 0) {
        deflateHere(slot, block);
        return;
      }
    }
    // Workers held back start once `deferWorkers` says no: the blocks
    // that waited for them go first.
    if (
      deferrable && !slot.incompressible && waiting.length > 0 && !deferred()
    ) {
      dispatchWaiting();
    }
    if (
      !slot.incompressible && pending < maxPending && given < maxQueue &&
      waiting.length === 0 && !deferred()
    ) {
      dispatch(slot, block);
      return;
    }
    // Every worker is busy (room() let it be read for the spill file), or
    // the blocks stored here fill their budget: the block waits its turn,
    // after those read before it.
    slot.ready = new Promise((resolve) => slot.settle = resolve);
    if (spill?.append(block)) {
      spilledBlocks++;
      recycle(block);
    } else {
      // The spill file failed on it: kept here, and no more are read
      // until the workers catch up.
      slot.block = block;
      waitingInMemory++;
    }
    if (!slot.incompressible) waitingToDeflate++;
    waiting.push(slot);
    // Behind blocks that will not shrink and wait over their budget, a free
    // worker takes those now that a block needs a worker (else the workers
    // idled until the next emission or answer).
    if (!slot.incompressible && waiting[0]!.incompressible) dispatchWaiting();
  };

  /**
   * Stores a block that will not shrink, in this thread, in memory that
   * the output's consumer hands back once written (a file sink does): the
   * copy then lands in pages touched before, not in a new buffer's (0.03
   * ms a MiB against 0.3-0.5 ms, in the thread the crashed process waits
   * on).
   */
  const storeHere = (slot: Slot, block: Uint8Array) => {
    const stored = deflateBlock(block, {
      level: slot.level,
      adler: zlibFormat,
      incompressible: true,
      into: storedPool.pop(),
    });
    slot.deflated = disposableChunk(stored.deflated, { recycle: reuseStored });
    slot.adler = stored.adler;
    slot.storedHere = true;
    storedHeld += stored.deflated.length;
    storedBlocks++;
    release(slot, block);
  };

  /** Gives a block to a worker. */
  const dispatch = (slot: Slot, block: Uint8Array) => {
    const id = nextId++;
    pending++;
    given++;
    slot.given = true;
    slot.block = block;
    const task: DeflateTask = {
      id,
      data: block,
      level: slot.level,
      adler: zlibFormat,
      ...compact({ nice: workerNice, incompressible: slot.incompressible }),
    };
    slot.ready = workers!.run(task, [block.buffer as ArrayBuffer]).then(
      (result) => {
        slot.deflated = disposableChunk(result.deflated);
        slot.adler = result.adler;
        slot.block = undefined;
        // The worker hands the input buffer back for the next block.
        release(slot, new Uint8Array(result.data, 0, slot.length));
      },
      (error: unknown) => {
        slot.failure = error;
      },
    ).finally(() => {
      pending--;
      dispatchWaiting();
      if (inThread && pending === 0) stop();
      readAhead();
    });
  };

  /**
   * Takes the oldest block that waits, from the spill file or memory, with
   * what settles its `ready`; undefined when its bytes could not be read
   * back (the stream then errors, at the next pull).
   */
  const takeWaiting = () => {
    const slot = waiting.shift()!;
    if (!slot.incompressible) waitingToDeflate--;
    const settle = slot.settle!;
    slot.settle = undefined;
    let block = slot.block;
    slot.block = undefined;
    if (block === undefined) {
      const buffer = pool.pop() ?? new ArrayBuffer(blockSize);
      try {
        block = spill!.take(new Uint8Array(buffer, 0, slot.length));
      } catch (error) {
        failure ??= error;
        settle();
        return undefined;
      }
    } else waitingInMemory--;
    return { slot, block, settle };
  };

  /**
   * Gives the blocks that wait to the workers as they free up, oldest
   * first; one that will not shrink is stored here instead, within the
   * budget of stored blocks or when it is the next to go out; else a free
   * worker stores it, if blocks that need a worker wait behind it.
   */
  const dispatchWaiting = () => {
    while (!closed && !inThread && waiting.length > 0) {
      const oldest = waiting[0]!;
      if (
        oldest.incompressible &&
        (storedHeld < storeBudget || oldest === queue[0])
      ) {
        const next = takeWaiting();
        if (next === undefined) return;
        storeHere(next.slot, next.block);
        next.settle();
        continue;
      }
      if (oldest.incompressible && waitingToDeflate === 0) return;
      if (pending >= maxPending || given >= maxQueue || deferred()) return;
      const next = takeWaiting();
      if (next === undefined) return;
      dispatch(next.slot, next.block);
      next.slot.ready.then(next.settle);
    }
  };

  /**
   * A block the workers did not deflate: deflated here from the bytes they
   * handed back (or never took), or the stream errors.
   */
  const recover = (slot: Slot) => {
    const error = slot.failure;
    slot.failure = undefined;
    const failed = error instanceof WorkerFailedError
      ? error
      : new WorkerFailedError(
        `Cannot run the ${WORKER_LABEL}: ${String(error)}`,
        "lib/_deflate_worker.ts",
        String(error),
        { cause: error },
      );
    if (fallback !== "inline") {
      throw failed instanceof TaskFailedError
        ? new WorkerFailedError(failed.message, failed.module, failed.reason)
        : failed;
    }
    let data: Uint8Array | undefined;
    if (
      failed instanceof TaskFailedError && failed.data !== undefined &&
      failed.data.byteLength >= slot.length
    ) {
      data = new Uint8Array(failed.data, 0, slot.length);
    } else if (slot.block?.length === slot.length) {
      data = slot.block; // never posted
    }
    slot.block = undefined;
    if (
      data === undefined || (!zlibFormat && crc32(0, data) !== slot.crc)
    ) {
      throw new WorkerFailedError(
        `Cannot compress bytes ${slot.offset} to ${
          slot.offset + slot.length
        } of the input: the ${WORKER_LABEL} ${failed.module} failed with ${failed.reason} and did not hand them back, expected them back to compress them in the main thread`,
        failed.module,
        failed.reason,
      );
    }
    takeOver(failed);
    deflateHere(slot, data);
  };

  /**
   * The header, once the first block tells whether the input fills more
   * than one block: smaller inputs get no index, nor does output whose
   * `maxOutput` leaves no room for it.
   */
  const header = async (
    first: Uint8Array | undefined,
  ): Promise<Uint8Array> => {
    if (zlibFormat) return zlibHeader(level);
    const plain = plainGzipHeader({ level });
    if (index === undefined || first?.length !== blockSize) return plain;
    const expected = index.expectedSize?.();
    const wanted = expected === undefined
      ? DEFAULT_INDEX_CAPACITY
      : Math.ceil(expected / blockSize);
    const capacity = Math.min(
      MAX_INDEX_CAPACITY,
      Math.max(2, wanted + (wanted % 2)),
    );
    const indexed = indexedGzipHeader(capacity, { level, blockSize });
    const needed = indexed.length + FINAL_BLOCK.length + trailerLength;
    if (maxOutput !== undefined && needed > await maxOutput(needed)) {
      return plain;
    }
    builder = indexBuilder(capacity, { blockSize, level });
    return indexed;
  };

  const enqueue = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    bytes: Uint8Array,
  ) => {
    // Counted first: a pipe can write the chunk, and its sink free it,
    // within enqueue().
    written += bytes.length;
    collect(bytes.length);
    controller.enqueue(bytes);
  };

  /** The final block and the trailer over the blocks emitted, then close. */
  const finish = async (
    controller: ReadableStreamDefaultController<Uint8Array>,
    cut: boolean,
  ) => {
    enqueue(controller, FINAL_BLOCK);
    if (builder !== undefined) {
      builder.add(FINAL_BLOCK.length, 0);
      amendment.patch = builder.patch();
    }
    const trailer = new Uint8Array(trailerLength);
    const view = new DataView(trailer.buffer);
    if (zlibFormat) {
      view.setUint32(0, adler, false);
    } else {
      view.setUint32(0, crc, true);
      view.setUint32(4, emittedInput % 2 ** 32, true);
    }
    enqueue(controller, trailer);
    queue.length = 0;
    waitingToDeflate = 0;
    shutDown();
    // The rest of the input is not wanted: let its producer go.
    if (cut) await source.cancel().catch(() => {});
    options.onEnd?.({
      inputBytes: emittedInput,
      cut,
      spilledBlocks,
      storedBlocks,
    });
    controller.close();
  };

  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!started) {
          started = true;
          const first = await nextBlock();
          enqueue(controller, await header(first));
          if (first === undefined) inputDone = true;
          else submit(first);
        }
        for (;;) {
          // Emit what is ready at the head, in order.
          let emitted = false;
          while (queue.length > 0) {
            const slot = queue[0]!;
            if (slot.failure !== undefined) recover(slot);
            if (slot.deflated === undefined) break;
            const deflated = slot.deflated;
            const needed = written + deflated.length + FINAL_BLOCK.length +
              trailerLength;
            const allowed = maxOutput === undefined
              ? Infinity
              : await maxOutput(needed);
            if (needed > allowed) {
              // The part of the block that fits, then the end.
              const part = fitPrefix(
                slot,
                allowed - written - FINAL_BLOCK.length - trailerLength,
              );
              if (part !== undefined) {
                if (zlibFormat) {
                  adler = adler32Combine(adler, part.adler, part.length);
                } else crc = crc32Combine(crc, part.crc, part.length);
                emittedInput += part.length;
                builder?.add(part.deflated.length, part.length);
                enqueue(controller, part.deflated);
              }
              await finish(controller, true);
              return;
            }
            queue.shift();
            if (slot.given) {
              slot.given = false;
              given--;
            }
            if (slot.storedHere) {
              slot.storedHere = false;
              storedHeld -= deflated.length;
            }
            if (slot.kept !== undefined) {
              recycle(slot.kept);
              slot.kept = undefined;
            }
            if (zlibFormat) {
              adler = slot.adler === -1
                ? adler32Zeros(adler, slot.length)
                : adler32Combine(adler, slot.adler, slot.length);
            } else {
              crc = crc32Combine(crc, slot.crc, slot.length);
            }
            emittedInput += slot.length;
            builder?.add(deflated.length, slot.length);
            enqueue(controller, deflated);
            emitted = true;
          }
          if (emitted) {
            dispatchWaiting();
            readAhead();
            return;
          }
          if (failure !== undefined) throw failure;
          // After a failure of the workers, the blocks that waited for
          // them are deflated here, each once it is the next to go out (a
          // block still in a worker ahead of it is waited for: deflating
          // all that waited at once would hold them all in memory).
          if (inThread && waiting.length > 0 && waiting[0] === queue[0]) {
            const next = takeWaiting();
            if (next !== undefined) {
              deflateHere(next.slot, next.block);
              next.settle();
            }
            continue;
          }
          if (queue.length > 0) {
            // A block that waits and is stored here may be the next out.
            if (waiting[0] === queue[0] && !inThread) {
              dispatchWaiting();
              if (queue[0]!.deflated !== undefined) continue;
            }
            const reading = readAhead();
            await (reading === undefined
              ? queue[0]!.ready
              : Promise.race([queue[0]!.ready, reading]));
            continue;
          }
          if (!inputDone) {
            // Nothing queued: the reading loop has room, or is reading.
            // Wait for its next block, not for the loop to end: with a
            // spill file it may read on until the input ends, and the
            // output (and every block a worker deflated meanwhile) stopped
            // until then. Through the kernel that stalled the mixed core's
            // 320 text MiB in about half the runs.
            const reading = readAhead() ?? ahead;
            if (reading !== undefined) {
              await Promise.race([
                reading,
                new Promise<void>((resolve) => queued = resolve),
              ]);
              queued = undefined;
            }
            continue;
          }
          await finish(controller, false);
          return;
        }
      } catch (error) {
        shutDown();
        await source.cancel(error).catch(() => {});
        throw error;
      }
    },
    async cancel(reason) {
      shutDown();
      await source.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return Object.assign(stream, { amendment });
}

const zeroBlocks = new Map<string, Uint8Array>();

/**
 * Deflate data of a block of zeros, built once per size and level: what
 * the compressor writes for every block of zeros, and how the decompressor
 * recognises one.
 *
 * @example Usage
 * ```ts
 * import { zeroBlock } from "./parallel_deflate.ts";
 * import { inflateRawSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const block = zeroBlock(1 << 20, 5);
 * assert.ok(block.length < 2048);
 * // Built once: the same bytes for every block of zeros.
 * assert.equal(zeroBlock(1 << 20, 5), block);
 * // Closed by an empty final block, as the compressor closes its stream.
 * const raw = inflateRawSync(new Uint8Array([...block, 0x03, 0x00]));
 * assert.deepEqual(new Uint8Array(raw), new Uint8Array(1 << 20));
 * ```
 *
 * @param length The block's length.
 * @param level The deflate level.
 * @returns Raw deflate data ending in a sync flush.
 */
export function zeroBlock(length: number, level: number): Uint8Array {
  const key = `${length}/${level}`;
  let deflated = zeroBlocks.get(key);
  if (deflated === undefined) {
    deflated = deflateBlock(new Uint8Array(length), { level, adler: false })
      .deflated;
    if (zeroBlocks.size < 8) zeroBlocks.set(key, deflated);
  }
  return deflated;
}
