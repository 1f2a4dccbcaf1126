/**
 * Private: inflates one task of the parallel decompressor, consecutive
 * chunks of an indexed gzip member (`gzip_index.ts`), and checks that they
 * are what the index says: exactly `size` bytes out (at most `size` for the
 * last chunk), all of the input used, and, but for the last chunk, no end of
 * the stream inside it: an empty final block is put after the chunk's data,
 * and the stream must end exactly there. The worker (`_inflate_worker.ts`)
 * runs it, and so does the decompressor itself for the first tasks, while
 * the workers start.
 *
 * @module
 */

import { constants, inflateRawSync } from "node:zlib";
import { crc32 } from "./checksum.ts";

/**
 * Chunks to inflate: `length` bytes of `data`, then 2 spare bytes. They
 * inflate to `size` bytes; the last chunks of a member to more than `min`.
 */
export interface InflateTask {
  id: number;
  data: ArrayBuffer;
  length: number;
  size: number;
  last: boolean;
  min: number;
}

/**
 * The chunk's bytes and CRC-32, or what was wrong with it (`error`: the
 * pool then rejects the task with a `TaskFailedError`).
 */
export interface InflateResult {
  id: number;
  output?: ArrayBuffer;
  length: number;
  crc: number;
  /** The task's buffer, handed back for the next chunk. */
  data: ArrayBuffer;
  error?: string;
}

/** An empty final fixed-Huffman block. */
const FINAL_BLOCK = [0x03, 0x00];

/**
 * Inflates a task and checks it.
 *
 * @param task The task; its `data` is used in place (the 2 spare bytes).
 * @returns The chunk's bytes and CRC-32, or the error (`error`), with the
 * task's buffer either way.
 */
export function inflateTask(task: InflateTask): InflateResult {
  const { id, data, length, size, last, min } = task;
  const input = new Uint8Array(data, 0, length + (last ? 0 : 2));
  if (!last) input.set(FINAL_BLOCK, length);
  try {
    const { buffer: out, engine } = inflateRawSync(input, {
      finishFlush: constants.Z_FINISH,
      maxOutputLength: size,
      // One output buffer, never full: no second buffer, no copy.
      chunkSize: size + 1,
      info: true,
    }) as unknown as { buffer: Uint8Array; engine: { bytesWritten: number } };
    if (engine.bytesWritten !== input.length) {
      throw new Error(
        last
          ? `the deflate stream ends ${
            length - engine.bytesWritten
          } bytes before the trailer`
          : "the deflate stream ends inside it",
      );
    }
    if (last ? out.length <= min : out.length !== size) {
      throw new Error(
        `it inflates to ${out.length} bytes, expected ${
          last ? `${min + 1} to ` : ""
        }${size}`,
      );
    }
    const output = out.byteOffset === 0 && out.buffer.byteLength <= size + 1
      ? out.buffer as ArrayBuffer
      : new Uint8Array(out).buffer;
    return { id, output, length: out.length, crc: crc32(0, out), data };
  } catch (error) {
    const message = error instanceof RangeError
      ? `it inflates to more than ${size} bytes`
      : error instanceof Error
      ? error.message
      : String(error);
    return { id, length: 0, crc: 0, data, error: message };
  }
}
