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
import { costChooser } from "./_cost_chooser.ts";
import {
  alignedBytes,
  alignUp,
  DIRECT_ALIGN,
  type DirectFile,
  openDirect,
  PAGE_CACHE,
} from "./_direct_io.ts";

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
  /**
   * Bypass the page cache (`O_DIRECT`) where the file system allows it:
   * `"auto"` measures the appends both ways (a window of 8 MiB each) and
   * keeps the cheaper, trying the other every 128 MiB; `"always"` bypasses
   * it for every aligned piece (4 KiB: the bytes after an append of
   * another length go through it until the file empties); `"never"` does
   * not. Where new pages are dear (a virtual machine whose host takes back
   * free memory), direct writes took a third to a half of the page cache's
   * time (0.5-1.1 ms a MiB against 2.1-2.7); where they are cheap, the page
   * cache is faster (0.25 ms a MiB) and its pages are dropped before they
   * reach the disk.
   *
   * @default {"never"}
   */
  direct?: "auto" | "always" | "never";
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
  const { file, path, direct } = createUnlinked(
    directory,
    options.direct ?? "never",
  );
  /** Writes may bypass the page cache: until one such write fails. */
  let directWrites = direct !== undefined;
  /** Where the next append goes, and where the next take starts. */
  let end = 0;
  let start = 0;
  let spilled = 0;
  let failure: string | undefined;
  let closed = false;
  /**
   * With `direct`, the parts of the file written past the page cache, as
   * `[from, to)` pairs in file order: reads of them bypass it too (a read
   * through it would fill new pages with them). Cleared when it empties.
   */
  const directParts: number[] = [];
  const chooser = options.direct === "auto"
    ? costChooser({ first: PAGE_CACHE })
    : undefined;
  const bounce = direct === undefined ? undefined : alignedBytes(BOUNCE_BYTES);
  const at = (offset: number) => file.seekSync(offset, Deno.SeekMode.Start);
  const cached = (bytes: Uint8Array, offset: number) => {
    at(offset);
    writeAllSync(file, bytes);
  };
  /**
   * Writes past the page cache what can be, from `end`; the rest through
   * it. Returns whether any of it went past.
   */
  const write = (bytes: Uint8Array) => {
    let done = 0;
    if (
      directWrites && chooser?.way !== PAGE_CACHE &&
      end % DIRECT_ALIGN === 0
    ) {
      const aligned = bytes.length - bytes.length % DIRECT_ALIGN;
      while (done < aligned) {
        const piece = Math.min(aligned - done, BOUNCE_BYTES);
        const staged = bounce!.subarray(0, piece);
        staged.set(bytes.subarray(done, done + piece));
        if (!direct!.writeAt(staged, end + done)) {
          // Not taken past the page cache (the disk is full, ...): the page
          // cache writes it, or says why not, and takes every later one.
          directWrites = false;
          break;
        }
        addPart(directParts, end + done, end + done + piece);
        done += piece;
      }
    }
    if (done < bytes.length) cached(bytes.subarray(done), end + done);
    return done > 0;
  };
  /** Reads `into` from `offset`, each part the way it was written. */
  const read = (into: Uint8Array, offset: number) => {
    let done = 0;
    while (done < into.length) {
      const here = offset + done;
      const part = partAt(directParts, here);
      const stop = Math.min(
        into.length,
        (part === undefined ? nextPart(directParts, here) : part[1]) - offset,
      );
      if (part !== undefined && readDirect(into.subarray(done, stop), here)) {
        done = stop;
        continue;
      }
      at(here);
      while (done < stop) {
        const got = file.readSync(into.subarray(done, stop));
        if (got === null || got === 0) {
          throw new Error(`it ended ${into.length - done} bytes early`);
        }
        done += got;
      }
    }
  };
  /** Reads through an aligned buffer; false when that failed. */
  const readDirect = (into: Uint8Array, offset: number) => {
    let done = 0;
    while (done < into.length) {
      const from = offset + done;
      const base = from - from % DIRECT_ALIGN;
      const want = Math.min(
        BOUNCE_BYTES,
        alignUp(from + into.length - done) - base,
      );
      const got = direct!.readAt(bounce!.subarray(0, want), base);
      const useful = Math.min(got - (from - base), into.length - done);
      if (got < 0 || useful <= 0) return false;
      into.set(bounce!.subarray(from - base, from - base + useful), done);
      done += useful;
    }
    return true;
  };
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
      const began = performance.now();
      const way = chooser?.way;
      let wentPast: boolean;
      try {
        wentPast = write(bytes);
      } catch (error) {
        // What part of it was written is past `end`: never taken.
        failure = `Cannot write the spill file in '${directory}': ${
          fsReason(error)
        }`;
        return false;
      }
      // Charged to the way it went: after an unaligned append, or a direct
      // write that failed, the page cache takes what direct would have.
      if (wentPast === (way !== PAGE_CACHE)) {
        chooser?.record(performance.now() - began, bytes.length);
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
        read(into, start);
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
        directParts.length = 0;
      }
      return into;
    },
    [Symbol.dispose]() {
      if (closed) return;
      closed = true;
      direct?.close();
      file.close();
    },
  };
}

/** The aligned buffer direct writes and reads go through. */
const BOUNCE_BYTES = 1 << 20;

/** Adds `[from, to)` to sorted pairs, joined to the last one it touches. */
function addPart(parts: number[], from: number, to: number): void {
  if (parts.length > 0 && parts[parts.length - 1] === from) {
    parts[parts.length - 1] = to;
  } else parts.push(from, to);
}

/** The pair holding `offset`, if any. */
function partAt(parts: number[], offset: number): [number, number] | undefined {
  for (let i = 0; i < parts.length; i += 2) {
    if (parts[i]! <= offset && offset < parts[i + 1]!) {
      return [parts[i]!, parts[i + 1]!];
    }
  }
  return undefined;
}

/** Where the next pair after `offset` starts; Infinity when none. */
function nextPart(parts: number[], offset: number): number {
  for (let i = 0; i < parts.length; i += 2) {
    if (parts[i]! > offset) return parts[i]!;
  }
  return Infinity;
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

/**
 * A new file of mode 0600 in `directory`, opened (a second time past the
 * page cache, unless `direct` is "never" or that cannot be) and unlinked.
 */
function createUnlinked(
  directory: string,
  direct: "auto" | "always" | "never",
): { file: Deno.FsFile; path: string; direct: DirectFile | undefined } {
  const { file, path } = createNewFile(directory, {
    name: (suffix) => `.gzcoredump-spill-${suffix}`,
    what: "a spill file",
    mode: 0o600,
    read: true,
  });
  // Undefined where it cannot be had: the page cache, then.
  const bypass = direct === "never"
    ? undefined
    : openDirect(path, file, { read: true });
  try {
    Deno.removeSync(path);
  } catch (error) {
    bypass?.close();
    file.close();
    throw new FileAccessError(
      `Cannot unlink the spill file '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
  return { file, path, direct: bypass };
}
