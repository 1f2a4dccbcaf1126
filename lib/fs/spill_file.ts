/**
 * A spill file: bytes set aside on disk, first in, first out, while the
 * work that consumes them falls behind the producer. A capture reads the
 * core as fast as the kernel writes it and puts the blocks its compressor
 * cannot take yet here, so that the crashed process is released at the
 * pace of the reads, not of the compression.
 *
 * The file is created new (never through a link, never an existing one)
 * with mode 0600 and unlinked at once: nothing is left behind whatever
 * happens to the process, and no other process can open it by name. Its
 * pages mostly stay in the page cache: each time the consumer catches up,
 * appends start again at the beginning, over the same pages (a file that
 * grew past 64 MiB is truncated first), and they go when the file is
 * closed, usually before the kernel writes them out.
 *
 * All calls are synchronous: one thread appends and takes, and each is a
 * copy into or out of the page cache.
 *
 * @module
 */

import { statfsSync } from "node:fs";
import { FileAccessError, fsReason } from "./errors.ts";
import { createNewFile } from "./_new_file.ts";
import { writeAllSync } from "./write_all.ts";

/** Options for {@linkcode openSpillFile}. */
export interface SpillFileOptions {
  /**
   * The most bytes the file may hold at once: an append that would pass
   * it is refused.
   */
  limit: number;
  /**
   * Bytes the file system must still have free after an append (`statfs`,
   * asked before each): an append that would leave less is refused, so
   * that captures spilling side by side leave room for their archives.
   *
   * @default {0}
   */
  minFree?: number;
}

/** Bytes on disk, taken back in the order they were put. */
export interface SpillFile extends Disposable {
  /** The most bytes it holds at once. */
  readonly limit: number;
  /** Bytes put and not yet taken. */
  readonly held: number;
  /**
   * Bytes that can still be put: the file is emptied only once everything
   * put was taken, so this is the limit less what was put since.
   */
  readonly free: number;
  /** Bytes put since it was opened. */
  readonly spilled: number;
  /**
   * Why appends stopped (a write failed: the disk is full, ...), once they
   * did; the bytes put before are still taken back.
   */
  readonly failure: string | undefined;
  /**
   * Puts bytes at the end, when they fit under the limit and the file can
   * be written.
   *
   * @returns False when they were not put (over the limit, or the write
   * failed: then {@linkcode SpillFile.failure} says why and no later
   * append is tried).
   */
  append(bytes: Uint8Array): boolean;
  /**
   * Takes the oldest `into.length` bytes put and not yet taken.
   *
   * @returns `into`, filled.
   * @throws {FileAccessError} When fewer bytes are held, or the file
   * cannot be read.
   */
  take(into: Uint8Array): Uint8Array;
}

/**
 * Creates an unlinked spill file in `directory`.
 *
 * @example Usage
 * ```ts
 * import { openSpillFile } from "./spill_file.ts";
 * import assert from "node:assert/strict";
 *
 * const directory = await Deno.makeTempDir();
 * using spill = openSpillFile(directory, { limit: 8 });
 * assert.equal(spill.append(new Uint8Array([1, 2, 3])), true);
 * assert.equal(spill.append(new Uint8Array([4, 5])), true);
 * // Over the limit of 8 bytes held: refused.
 * assert.equal(spill.append(new Uint8Array(4)), false);
 * // First in, first out.
 * assert.deepEqual(spill.take(new Uint8Array(2)), new Uint8Array([1, 2]));
 * assert.deepEqual(spill.take(new Uint8Array(3)), new Uint8Array([3, 4, 5]));
 * assert.equal(spill.held, 0);
 * // Emptied: the whole limit is free again.
 * assert.equal(spill.free, 8);
 * // Nothing of it is in the directory.
 * assert.deepEqual([...Deno.readDirSync(directory)], []);
 * ```
 *
 * @param directory Where the file is made: the file system that takes it.
 * @param options The most bytes it may hold.
 * @returns The spill file; dispose of it to close it.
 * @throws {FileAccessError} When the file cannot be created.
 */
export function openSpillFile(
  directory: string,
  options: SpillFileOptions,
): SpillFile {
  const { file, path } = createUnlinked(directory);
  /** Where the next append goes, and where the next take starts. */
  let end = 0;
  let start = 0;
  let spilled = 0;
  let failure: string | undefined;
  let closed = false;
  const at = (offset: number) => file.seekSync(offset, Deno.SeekMode.Start);
  return {
    limit: options.limit,
    get held() {
      return end - start;
    },
    get free() {
      return closed || failure !== undefined ? 0 : options.limit - end;
    },
    get spilled() {
      return spilled;
    },
    get failure() {
      return failure;
    },
    append(bytes) {
      if (closed || failure !== undefined) return false;
      if (end + bytes.length > options.limit) return false;
      if (
        options.minFree && !leaves(directory, bytes.length, options.minFree)
      ) {
        return false;
      }
      try {
        at(end);
        writeAllSync(file, bytes);
      } catch (error) {
        // What part of it was written is past `end`: never taken.
        failure = `Cannot write the spill file in '${directory}': ${
          fsReason(error)
        }`;
        return false;
      }
      end += bytes.length;
      spilled += bytes.length;
      return true;
    },
    take(into) {
      if (into.length > end - start) {
        throw new FileAccessError(
          `Cannot take ${into.length} bytes from the spill file in '${directory}': expected at most the ${
            end - start
          } bytes it holds`,
          path,
        );
      }
      try {
        at(start);
        for (let done = 0; done < into.length;) {
          const read = file.readSync(into.subarray(done));
          if (read === null || read === 0) {
            throw new Error(`it ended ${into.length - done} bytes early`);
          }
          done += read;
        }
      } catch (error) {
        throw new FileAccessError(
          `Cannot read the spill file in '${directory}' at byte ${start}: ${
            fsReason(error)
          }`,
          path,
          { cause: error },
        );
      }
      start += into.length;
      // Caught up: appends go over the same pages again (cheaper than new
      // ones: truncating a file of a few blocks each time it emptied took
      // 33 ms of a capture); a file that grew large gives its space back.
      if (start === end) {
        if (end >= TRUNCATE_BYTES) {
          try {
            file.truncateSync(0);
          } catch {
            // It keeps its size: appends go over it again.
          }
        }
        start = end = 0;
      }
      return into;
    },
    [Symbol.dispose]() {
      if (closed) return;
      closed = true;
      file.close();
    },
  };
}

/** A file that emptied at this size or more is truncated. */
const TRUNCATE_BYTES = 64 << 20;

/** Whether `directory`'s file system keeps `minFree` bytes after `bytes`. */
function leaves(directory: string, bytes: number, minFree: number): boolean {
  try {
    const { bavail, bsize } = statfsSync(directory);
    return bavail * bsize - bytes >= minFree;
  } catch {
    return false;
  }
}

/** A new file of mode 0600 in `directory`, opened and unlinked. */
function createUnlinked(
  directory: string,
): { file: Deno.FsFile; path: string } {
  const { file, path } = createNewFile(directory, {
    name: (suffix) => `.gzcoredump-spill-${suffix}`,
    what: "a spill file",
    mode: 0o600,
    read: true,
  });
  try {
    Deno.removeSync(path);
  } catch (error) {
    file.close();
    throw new FileAccessError(
      `Cannot unlink the spill file '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
  return { file, path };
}
