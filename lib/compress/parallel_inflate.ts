/**
 * Parallel decompression of a gzip member that carries a chunk index in its
 * header (`gzip_index.ts`, written by the parallel compressor): the chunks
 * are inflated in workers and their bytes come out in order. The member's
 * CRC-32 is combined from the chunks' and checked against the trailer with
 * its length, as a sequential inflater checks them.
 *
 * Chunks of zeros, recognised by their bytes (the compressor's one block
 * of zeros, repeated), are not inflated: they come out as views of shared
 * zeros, which a sparse file sink turns into holes without reading them.
 *
 * The first tasks are inflated in this thread while the workers start.
 *
 * @module
 */

import { crc32Combine, crc32Zeros } from "./checksum.ts";
import { zeroBlock } from "./parallel_deflate.ts";
import { disposableChunk, zeros } from "../util/mod.ts";
import type { GzipIndex } from "./gzip_index.ts";
import {
  type InflateResult,
  type InflateTask,
  inflateTask,
} from "./_inflate_task.ts";
import type { ByteSource } from "../util/mod.ts";
import { garbageMeter } from "../util/mod.ts";
import { startWorkers, TaskFailedError } from "../util/mod.ts";

export { WorkerFailedError } from "../util/mod.ts";

/**
 * Chunks larger than this are inflated in one stream instead, so that the
 * tasks in flight stay small whatever the input (indexes of inputs of
 * unknown size merge their chunks past 1 GiB).
 */
export const MAX_PARALLEL_CHUNK = 8 << 20;
/**
 * Output bytes per task: consecutive chunks are inflated together up to
 * this size. Fewer, larger reads, messages and writes: with 1 MiB tasks the
 * main thread's reads and writes waited for the busy cores and left the
 * workers idle 40% of the time.
 */
const TASK_SIZE = 4 << 20;
/**
 * Output bytes inflated in this thread while the workers start (the first
 * tasks): creating a worker blocks this thread for about 20 ms, and loading
 * its modules takes about 30 ms more. An input whose output is no larger
 * starts no worker.
 */
const INLINE_BYTES = 16 << 20;

/** The compressed data does not agree with its index or its trailer. */
export class ChunkError extends Error {
  /** Creates the error; the message says what was expected and found. */
  constructor(message: string) {
    super(message);
    this.name = "ChunkError";
  }
}

/** Options for {@linkcode parallelInflate}. */
export interface ParallelInflateOptions {
  /**
   * Worker threads.
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
}

/**
 * Inflates the deflate data and checks the trailer of an indexed gzip
 * member, whose header has been read from `source` already.
 *
 * @param source The input, positioned at the first chunk.
 * @param index The member's index (from `readGzipIndex`).
 * @param options Workers.
 * @returns The decompressed bytes, in order.
 * @throws {ChunkError} When a chunk or the trailer is not as expected; the
 * message gives the byte offset in the file.
 * @throws {WorkerFailedError} When a worker cannot be started (its module
 * is missing from the binary, or does not load) or stops answering: one
 * line, never a stack trace.
 *
 * @example Usage
 * ```ts
 * import { ChunkError, parallelInflate } from "./parallel_inflate.ts";
 * import { parallelCompress } from "./parallel_deflate.ts";
 * import { extraFieldEnd, readGzipIndex } from "./gzip_index.ts";
 * import { openByteSource } from "../util/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // An indexed gzip member of six 4 KiB chunks, its index written over
 * // the header at the end.
 * const core = new Uint8Array(6 * 4096).map((_, i) => (i >> 12) + (i % 13));
 * const stream = parallelCompress(ReadableStream.from([core]), {
 *   inline: true,
 *   blockSize: 4096,
 *   index: {},
 * });
 * const file = await new Response(stream).bytes();
 * const patch = stream.amendment.patch;
 * assert.ok(patch !== undefined);
 * file.set(patch.bytes, patch.offset);
 * const index = readGzipIndex(file.subarray(0, extraFieldEnd(file)), file.length);
 * assert.ok(index !== undefined);
 *
 * // The header has been read: the source starts at the first chunk.
 * const inflate = (bytes: Uint8Array) =>
 *   ReadableStream.from(
 *     parallelInflate(
 *       openByteSource(ReadableStream.from([bytes.subarray(index.headerLength)])),
 *       index,
 *       { jobs: 2 },
 *     ),
 *   );
 * assert.deepEqual(await new Response(inflate(file)).bytes(), core);
 *
 * // A trailer that does not match the data.
 * const corrupt = file.slice();
 * corrupt[corrupt.length - 8]! ^= 0xff;
 * await assert.rejects(Array.fromAsync(inflate(corrupt)), ChunkError);
 * ```
 */
export async function* parallelInflate(
  source: ByteSource,
  index: GzipIndex,
  options: ParallelInflateOptions = {},
): AsyncGenerator<Uint8Array> {
  const { lengths, chunkSize, headerLength } = index;
  const jobs = Math.max(
    1,
    Math.min(
      options.jobs ?? (navigator.hardwareConcurrency || 1),
      Math.ceil(lengths.length * chunkSize / TASK_SIZE),
    ),
  );
  const workers = lengths.length * chunkSize > INLINE_BYTES
    ? startWorkers<InflateTask, InflateResult>(
      new URL("./_inflate_worker.ts", import.meta.url),
      jobs,
      { label: "decompression worker" },
    )
    : undefined;
  // Made while the workers load.
  const pattern = zeroPattern(index);
  const tasks = group(index, pattern?.length);
  const capacity = Math.max(...tasks.map((task) => task.length)) + 2;
  const pool: ArrayBuffer[] = [];
  const queue: Promise<InflateResult | "zeros">[] = [];
  // Two tasks per worker, or one when the tasks are larger than usual.
  const maxPending = chunkSize > TASK_SIZE ? jobs : jobs * 2;
  const collect = garbageMeter({ threshold: 16 << 20 });
  let next = 0;
  let inlined = 0; // Output bytes of the tasks inflated here.
  const end = headerLength + tasks.reduce((sum, t) => sum + t.length, 0);
  const where = (id: number) => {
    const task = tasks[id]!;
    return `chunk${task.count > 1 ? "s" : ""} ${task.first + 1}${
      task.count > 1 ? `-${task.first + task.count}` : ""
    } of ${lengths.length} (bytes ${task.offset} to ${
      task.offset + task.length
    })`;
  };

  const submit = async () => {
    const id = next++;
    const task = tasks[id]!;
    const buffer = pool.pop() ?? new ArrayBuffer(capacity);
    const view = await source.fill(new Uint8Array(buffer, 0, task.length));
    if (view.length < task.length) {
      throw new ChunkError(
        `the gzip stream is truncated: the input ends at byte ${
          task.offset + view.length
        }, expected ${where(id)}`,
      );
    }
    if (task.zero && pattern !== undefined && equal(view, pattern)) {
      pool.push(view.buffer as ArrayBuffer);
      queue.push(Promise.resolve("zeros"));
      return;
    }
    const last = id === tasks.length - 1;
    const message: InflateTask = {
      id,
      data: view.buffer as ArrayBuffer,
      length: task.length,
      size: task.count * chunkSize,
      last,
      min: (task.count - 1) * chunkSize,
    };
    if (workers === undefined || inlined + message.size <= INLINE_BYTES) {
      inlined += message.size;
      queue.push(Promise.resolve(inflateTask(message)));
    } else {
      queue.push(workers.run(message, [message.data]));
    }
  };
  const corrupt = (id: number, reason: string) =>
    new ChunkError(
      `corrupt deflate data in ${
        where(id)
      }: ${reason}, expected a valid gzip stream`,
    );

  try {
    let crc = 0;
    let total = 0;
    for (let id = 0; id < tasks.length; id++) {
      while (next < tasks.length && next - id < maxPending) await submit();
      let result: InflateResult | "zeros";
      try {
        result = await queue.shift()!;
      } catch (error) {
        // The worker caught it: the chunk's data is not what the index says.
        if (!(error instanceof TaskFailedError)) throw error;
        if (error.data?.byteLength === capacity) pool.push(error.data);
        throw corrupt(id, error.reason);
      }
      if (result === "zeros") {
        const size = tasks[id]!.count * chunkSize;
        crc = crc32Zeros(crc, size);
        total += size;
        yield zeros(size);
        continue;
      }
      if (result.data.byteLength === capacity) pool.push(result.data);
      // Inflated here: the same check as a worker's.
      if (result.error !== undefined) throw corrupt(id, result.error);
      crc = crc32Combine(crc, result.crc, result.length);
      total += result.length;
      // Its consumer may free it once done (a file sink does); one that
      // did not leaves it to the collector, which the meter asks for.
      yield disposableChunk(new Uint8Array(result.output!, 0, result.length));
      if (result.output!.byteLength > 0) collect(result.length);
    }
    const trailer = await source.fill(new Uint8Array(8));
    if (trailer.length < 8) {
      throw new ChunkError(
        `the gzip stream is truncated: the input ends at byte ${
          end + trailer.length
        }, expected the 8-byte CRC-32 and length trailer`,
      );
    }
    const view = new DataView(trailer.buffer, trailer.byteOffset, 8);
    if (view.getUint32(0, true) !== crc) {
      throw new ChunkError(
        "the CRC-32 of the data does not match the gzip trailer, expected equal values (the file is corrupt)",
      );
    }
    if (view.getUint32(4, true) !== total % 2 ** 32) {
      throw new ChunkError(
        "the length of the data does not match the gzip trailer, expected equal values (the file is corrupt)",
      );
    }
    if (await source.read() !== undefined) {
      throw new ChunkError(
        `found more data after the gzip member at byte ${
          end + 8
        } than the file's size said, expected the end of the file (it grew while it was read)`,
      );
    }
  } finally {
    workers?.stop();
  }
}

/** Consecutive chunks inflated as one task. */
interface Task {
  first: number;
  count: number;
  /** File offset and length of the compressed bytes. */
  offset: number;
  length: number;
  /** One chunk as long as a chunk of zeros: compared before inflating. */
  zero: boolean;
}

/**
 * Groups the index's chunks into tasks of about {@linkcode TASK_SIZE};
 * a chunk as long as a chunk of zeros is a task of its own.
 */
function group(index: GzipIndex, zeroLength: number | undefined): Task[] {
  const per = Math.max(1, Math.floor(TASK_SIZE / index.chunkSize));
  const { lengths } = index;
  const tasks: Task[] = [];
  let offset = index.headerLength;
  for (let i = 0; i < lengths.length; i++) {
    const zero = lengths[i] === zeroLength && i < lengths.length - 1;
    const open = tasks.at(-1);
    if (open !== undefined && !open.zero && !zero && open.count < per) {
      open.count++;
      open.length += lengths[i]!;
    } else {
      tasks.push({ first: i, count: 1, offset, length: lengths[i]!, zero });
    }
    offset += lengths[i]!;
  }
  return tasks;
}

/** The compressed bytes of a chunk of zeros, when the index tells them. */
function zeroPattern(index: GzipIndex): Uint8Array | undefined {
  const { level, blockSize, chunkSize } = index;
  if (level < 1 || level > 9) return undefined;
  const block = zeroBlock(blockSize, level);
  const repeat = chunkSize / blockSize;
  const pattern = new Uint8Array(block.length * repeat);
  for (let i = 0; i < repeat; i++) pattern.set(block, i * block.length);
  return pattern;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
