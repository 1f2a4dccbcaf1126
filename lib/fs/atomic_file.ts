/**
 * Writing a file so that it is never half-written under its final name and
 * never replaces an existing file by accident.
 *
 * The bytes go to a hidden temporary file created exclusively (`O_EXCL`, so
 * a planted symlink is never followed) in the target directory, are flushed
 * with `fsync`, and the file is then published with `link(2)`, which fails
 * rather than overwrite. On a failure the temporary file is removed.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { FileAccessError, FileExistsError, fsReason } from "./errors.ts";
import { createNewFile } from "./_new_file.ts";
import { SHORT_WRITE_PIECE, writeAllSync } from "./write_all.ts";
import { costChooser } from "./_cost_chooser.ts";
import {
  alignedBytes,
  alignUp,
  DIRECT,
  DIRECT_ALIGN,
  type DirectFile,
  openDirect,
  PAGE_CACHE,
} from "./_direct_io.ts";
import { compact, disposeChunk, isSharedZeros, isZero } from "../util/mod.ts";

/** Bytes to write over a file at an offset once its data is complete. */
export interface FilePatch {
  /** Where the bytes go, in bytes from the start of the file. */
  offset: number;
  /** The bytes written there. */
  bytes: Uint8Array;
}

/**
 * A handle on bytes to write over a file once its data is complete, given
 * by the data's producer (the compressor's chunk index) and read by the
 * sink at the end.
 */
export interface Amendment {
  /** The patch, once the producer has it; undefined: none. */
  readonly patch: FilePatch | undefined;
}

/** Options for {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * Permission bits of the new file.
   *
   * @default {0o600}
   */
  mode?: number;
  /**
   * Replace an existing file of the same name (atomically, by `rename`).
   *
   * @default {false}
   */
  replace?: boolean;
  /**
   * When the name is taken, try `name-2.ext`, `name-3.ext` ... instead of
   * failing.
   *
   * @default {false}
   */
  unique?: boolean;
  /**
   * Leave holes where the data has blocks of zeros, and write the rest in
   * pieces of {@linkcode SHORT_WRITE_PIECE} (the files written sparse are
   * decompressed cores, whose chunks come in new buffers).
   *
   * @default {false}
   */
  sparse?: boolean;
  /**
   * Read once all the data is written: bytes to write over the file at an
   * offset before it is synced (a header that could only be completed at
   * the end).
   *
   * @default {undefined}
   */
  amend?: Amendment;
  /**
   * `fsync` the file before publishing it, so that it survives a power
   * loss, not only a crash of the process. Off is for copies whose source
   * is kept (as gzip and zstd write): the file is still never seen
   * half-written.
   *
   * @default {true}
   */
  sync?: boolean;
  /**
   * Stops the write when aborted: the data is cancelled, the temporary file
   * removed, and the call rejects with the signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Bypass the page cache (`O_DIRECT`) where the file system allows it,
   * for all but the unaligned ends: `"auto"` measures both ways as it
   * writes (the time the producer waits, a window of 8 MiB each) and keeps
   * the cheaper, trying the other every 128 MiB; `"always"` bypasses it
   * throughout; `"never"` does not. Direct writes go in 4 MiB pieces from a
   * thread of Deno's pool while the producer goes on, into blocks allocated
   * as the bytes are staged (so that the file's size and the disk's free
   * space count them). Ignored with `sparse`. Where new pages are dear (a
   * virtual machine whose host takes back free memory) 307 MiB of a
   * capture took 0.46-0.92 s through the page cache and 0.1-0.15 s past
   * it; where they are cheap, about the same; on storage slower than the
   * data, the page cache absorbs what the disk cannot take yet.
   *
   * @default {"never"}
   */
  direct?: "auto" | "always" | "never";
}

/** How many alternative names `unique` tries before giving up. */
const MAX_UNIQUE_ATTEMPTS = 1000;

/**
 * Streams bytes into a new file, published only once complete and synced.
 *
 * @param path The final path.
 * @param data The bytes to write; consumed entirely.
 * @param options Mode, and what to do when the name is taken.
 * @returns The path the file was published under (differs from `path` only
 * with `unique`).
 * @throws {FileExistsError} When `path` exists and neither `replace` nor
 * `unique` is set.
 * @throws {FileAccessError} When the file cannot be created, written or
 * published; nothing is left behind.
 *
 * @example Usage
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * import { FileExistsError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const bytes = () => ReadableStream.from([new TextEncoder().encode("core")]);
 * const path = `${dir}/core.copy`;
 * assert.equal(await writeFileAtomic(path, bytes()), path);
 * assert.equal(await Deno.readTextFile(path), "core");
 * assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
 * // The name is taken: never overwritten, unless asked.
 * await assert.rejects(writeFileAtomic(path, bytes()), FileExistsError);
 * assert.equal(
 *   await writeFileAtomic(path, bytes(), { unique: true }),
 *   `${dir}/core-2.copy`,
 * );
 * // No temporary file is left behind.
 * const names = await Array.fromAsync(Deno.readDir(dir), (e) => e.name);
 * assert.deepEqual(names.sort(), ["core-2.copy", "core.copy"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example Bytes completed at the end, written over the start
 * ```ts
 * import { type FilePatch, writeFileAtomic } from "./atomic_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const amend: { patch: FilePatch | undefined } = { patch: undefined };
 * const data = ReadableStream.from([new TextEncoder().encode("size=?; data")])
 *   .pipeThrough(
 *     new TransformStream<Uint8Array, Uint8Array>({
 *       flush() {
 *         // Known only once the data has gone by.
 *         amend.patch = { offset: 5, bytes: new TextEncoder().encode("4") };
 *       },
 *     }),
 *   );
 * await writeFileAtomic(`${dir}/out`, data, { amend });
 * assert.equal(await Deno.readTextFile(`${dir}/out`), "size=4; data");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: ReadableStream<Uint8Array>,
  options: WriteFileAtomicOptions = {},
): Promise<string> {
  const { mode = 0o600, replace = false, unique = false, sparse = false } =
    options;
  const temp = createTempFile(path, mode);
  try {
    await data.pipeTo(
      fileSink(temp.file, path, {
        sparse,
        direct: sparse ? undefined : openDirectFor(temp, options.direct),
        sync: options.sync ?? true,
        ...compact({ amend: options.amend }),
      }),
      compact({ signal: options.signal }),
    );
    return await publish(temp.path, path, { replace, unique });
  } catch (error) {
    await removeQuietly(temp.path);
    throw error;
  }
}

/**
 * Creates the hidden temporary file next to `path`, exclusively.
 *
 * @param path The final path the temporary file stands in for.
 * @param mode Permission bits.
 * @returns The open file and its path.
 */
function createTempFile(
  path: string,
  mode: number,
): { file: Deno.FsFile; path: string } {
  return createNewFile(dirname(path), {
    name: (suffix) => `.${basename(path)}.tmp-${suffix}`,
    what: "a file",
    mode,
  });
}

/** Size of the blocks a sparse file skips when they are all zeros. */
const HOLE_BLOCK = 4096;

/**
 * A sink that writes every byte, then `fsync`s and closes the file. With
 * `sparse`, blocks of zeros are skipped (a seek instead of a write), so the
 * file gets holes where the data had zero pages, as the kernel writes cores.
 */
function fileSink(
  file: Deno.FsFile,
  path: string,
  options: Pick<WriteFileAtomicOptions, "sparse" | "amend" | "sync"> & {
    direct?: DirectWays | undefined;
  },
): WritableStream<Uint8Array> {
  const { sparse = false, amend, sync = true } = options;
  const fail = (error: unknown) =>
    new FileAccessError(`Cannot write '${path}': ${fsReason(error)}`, path, {
      cause: error,
    });
  let position = 0;
  let written = 0; // The file's position after the last write.
  // Synchronous writes, on purpose: the pipeline waits for each write
  // anyway (backpressure), and an async write's trip through a thread pool
  // costs more than the copy itself when workers keep both cores busy:
  // decompressing the 957 MB python core took 1.15 s with async writes and
  // 0.89 s with these (`deno task bench`).
  // A file with holes is a decompressed core (see the `sparse` option).
  const pieces = sparse ? { piece: SHORT_WRITE_PIECE } : {};
  const writeAt = (bytes: Uint8Array, at: number) => {
    if (at !== written) file.seekSync(at, Deno.SeekMode.Start);
    writeAllSync(file, bytes, pieces);
    written = at + bytes.length;
  };
  let released = false;
  /** Waits for the writes in flight, then closes the descriptors, once. */
  const release = async () => {
    if (released) return;
    released = true;
    await ways?.abort();
    file.close();
  };
  const ways = options.direct === undefined
    ? undefined
    : orderedWrites(options.direct, writeAt, (size) => file.truncate(size));
  return new WritableStream({
    async write(chunk) {
      try {
        if (!sparse) {
          if (ways !== undefined) await ways.write(chunk, position);
          else writeAt(chunk, position);
          position += chunk.length;
          // Written: a chunk its producer gave away is freed now.
          disposeChunk(chunk);
          return;
        }
        if (isSharedZeros(chunk)) {
          // Known zeros (a chunk the decompressor did not inflate): a hole.
          position += chunk.length;
          return;
        }
        // Write runs of blocks with data; skip blocks of zeros.
        let runStart = -1;
        let at = 0;
        while (at < chunk.length) {
          const end = Math.min(
            chunk.length,
            at + HOLE_BLOCK - ((position + at) % HOLE_BLOCK),
          );
          const zero = isZero(chunk, at, end);
          if (!zero && runStart === -1) runStart = at;
          if (zero && runStart !== -1) {
            writeAt(chunk.subarray(runStart, at), position + runStart);
            runStart = -1;
          }
          at = end;
        }
        if (runStart !== -1) {
          writeAt(chunk.subarray(runStart), position + runStart);
        }
        position += chunk.length;
        disposeChunk(chunk);
      } catch (error) {
        // The stream errors: nothing closes the file after this.
        await release();
        throw fail(error);
      }
    },
    async close() {
      try {
        await ways?.finish(position);
        // Trailing holes: the size is set without writing them.
        if (sparse && written < position) await file.truncate(position);
        const patch = amend?.patch;
        if (patch !== undefined) {
          if (patch.offset + patch.bytes.length > position) {
            throw new RangeError(
              `a patch of ${patch.bytes.length} bytes at offset ${patch.offset} ends past the end of the data (${position} bytes)`,
            );
          }
          writeAt(patch.bytes, patch.offset);
        }
        if (sync) await file.sync();
      } catch (error) {
        throw fail(error);
      } finally {
        await release();
      }
    },
    async abort() {
      await release();
    },
  });
}

/** A descriptor past the page cache, and how to choose between the two. */
interface DirectWays {
  file: DirectFile;
  mode: "auto" | "always";
}

/** Opens the temporary file past the page cache too, when asked and possible. */
function openDirectFor(
  temp: { file: Deno.FsFile; path: string },
  mode: WriteFileAtomicOptions["direct"],
): DirectWays | undefined {
  if (mode === undefined || mode === "never") return undefined;
  const file = openDirect(temp.path, temp.file);
  return file === undefined ? undefined : { file, mode };
}

/** Bytes of each direct write; two are in memory (one filling, one written). */
const STAGE_BYTES = 4 << 20;

/**
 * Writes a file's bytes in order, each aligned stretch either past the page
 * cache (copied into one of two aligned stages, written by a thread of
 * Deno's pool while the next fills) or through it with `writeAt`; the
 * unaligned bytes at either end of a direct stretch always through it. A
 * direct write that fails is written again through the page cache, which
 * then takes everything (and says why, if it fails too).
 */
function orderedWrites(
  ways: DirectWays,
  writeAt: (bytes: Uint8Array, at: number) => void,
  truncate: (size: number) => Promise<void>,
) {
  const direct = ways.file;
  const chooser = ways.mode === "auto"
    ? costChooser({ first: DIRECT })
    : undefined;
  let bypass = true;
  const stages = [0, 1].map(() => ({
    bytes: alignedBytes(STAGE_BYTES),
    written: undefined as Promise<void> | undefined,
  }));
  let current = 0;
  /** Why a write in the pool failed, even through the page cache. */
  let failure: { error: unknown } | undefined;
  const rethrow = () => {
    if (failure !== undefined) throw failure.error;
  };
  /** Bytes in the current stage; it starts at the position less these. */
  let fill = 0;
  /** The file's end as allocated for the bytes staged; -1 before any. */
  let reserved = -1;
  /**
   * Allocates the blocks of bytes `from` to `to` before they are staged:
   * the file's size and the disk's free space count what waits in memory,
   * as they count what waits in the page cache (the store's --max-use and
   * --keep-free read them while the file grows).
   */
  const reserve = (from: number, to: number) => {
    const end = alignUp(to);
    if (end <= reserved) return true;
    const start = Math.max(reserved, from - from % DIRECT_ALIGN);
    if (!direct.reserve(start, end - start)) return false;
    reserved = end;
    return true;
  };
  /** Writes the current stage's first `length` bytes from `at`, in the pool. */
  const launch = (length: number, at: number) => {
    const stage = stages[current]!;
    const bytes = stage.bytes.subarray(0, length);
    stage.written = direct.writeAtAsync(bytes, at).then((whole) => {
      if (whole) return;
      bypass = false;
      writeAt(bytes, at);
    }).catch((error: unknown) => {
      // Thrown by the next write, or at the end.
      failure ??= { error };
    });
    current ^= 1;
  };
  /** Writes what the current stage holds, `end` being where it ends. */
  const flush = (end: number) => {
    if (fill === 0) return;
    const at = end - fill;
    const aligned = fill - fill % DIRECT_ALIGN;
    const stage = stages[current]!;
    if (aligned < fill) {
      writeAt(stage.bytes.subarray(aligned, fill), at + aligned);
    }
    fill = 0;
    if (aligned > 0) launch(aligned, at);
  };
  const settled = async () => {
    for (const stage of stages) {
      const written = stage.written;
      stage.written = undefined;
      await written;
    }
  };
  return {
    /** Writes `chunk`, which goes at `position`. */
    async write(chunk: Uint8Array, position: number) {
      rethrow();
      const began = performance.now();
      const way = chooser?.way ?? DIRECT;
      if (!bypass || way === PAGE_CACHE) {
        flush(position);
        writeAt(chunk, position);
      } else {
        let done = 0;
        if (fill === 0 && position % DIRECT_ALIGN !== 0) {
          // A stage starts on an aligned offset.
          done = Math.min(
            chunk.length,
            DIRECT_ALIGN - position % DIRECT_ALIGN,
          );
          writeAt(chunk.subarray(0, done), position);
        }
        while (done < chunk.length) {
          const stage = stages[current]!;
          if (stage.written !== undefined) {
            const written = stage.written;
            stage.written = undefined;
            await written;
          }
          const piece = Math.min(chunk.length - done, STAGE_BYTES - fill);
          if (!reserve(position + done, position + done + piece)) {
            // No room, or no way to ask for it: the page cache says which.
            bypass = false;
            flush(position + done);
            writeAt(chunk.subarray(done), position + done);
            break;
          }
          stage.bytes.set(chunk.subarray(done, done + piece), fill);
          fill += piece;
          done += piece;
          if (fill === STAGE_BYTES) {
            fill = 0;
            launch(STAGE_BYTES, position + done - STAGE_BYTES);
          }
        }
      }
      // Charged to the way used: once the page cache takes everything, the
      // measure no longer matters.
      if (bypass) chooser?.record(performance.now() - began, chunk.length);
    },
    /**
     * Writes what is left, `end` being the data's end, gives back the room
     * allocated past it, and closes.
     */
    async finish(end: number) {
      try {
        flush(end);
        await settled();
        rethrow();
        if (reserved > end) await truncate(end);
      } finally {
        // Never closed under a write in flight (its number could be reused
        // by another file before the write runs).
        await settled().catch(() => {});
        direct.close();
      }
    },
    /** Waits for the writes in flight and closes. */
    async abort() {
      try {
        await settled();
      } catch {
        // Aborted anyway.
      } finally {
        direct.close();
      }
    },
  };
}

/** Moves a complete temporary file to its final name. */
async function publish(
  tempPath: string,
  path: string,
  options: { replace: boolean; unique: boolean },
): Promise<string> {
  if (options.replace) {
    await wrap(() => Deno.rename(tempPath, path), "publish", path);
    await syncDirectory(dirname(path));
    return path;
  }
  const attempts = options.unique ? MAX_UNIQUE_ATTEMPTS : 1;
  for (let n = 1; n <= attempts; n++) {
    const candidate = n === 1 ? path : numbered(path, n);
    if (await linkNoClobber(tempPath, candidate)) {
      await removeQuietly(tempPath);
      await syncDirectory(dirname(candidate));
      return candidate;
    }
  }
  throw new FileExistsError(path);
}

/**
 * Gives `tempPath` the name `path` unless that name exists. Uses `link(2)`;
 * on file systems without hard links (vfat) falls back to a checked rename.
 *
 * @returns False when the name is taken.
 */
async function linkNoClobber(tempPath: string, path: string): Promise<boolean> {
  try {
    await Deno.link(tempPath, path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    if (
      !(error instanceof Deno.errors.PermissionDenied) && !isNotSupported(error)
    ) {
      throw new FileAccessError(
        `Cannot publish '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
  }
  try {
    await Deno.lstat(path);
    return false;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new FileAccessError(
        `Cannot publish '${path}': ${fsReason(error)}`,
        path,
        {
          cause: error,
        },
      );
    }
  }
  await wrap(() => Deno.rename(tempPath, path), "publish", path);
  return true;
}

/** `Core_x.gz` becomes `Core_x-2.gz`; the extension is what follows the last dot. */
function numbered(path: string, n: number): string {
  const name = basename(path);
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const extension = dot > 0 ? name.slice(dot) : "";
  return join(dirname(path), `${stem}-${n}${extension}`);
}

/** Makes a new directory entry durable. Best effort: not every FS allows it. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    using handle = await Deno.open(directory, { read: true });
    await handle.sync();
  } catch {
    // A directory that cannot be synced still holds the complete file.
  }
}

async function wrap(
  operation: () => Promise<void>,
  action: string,
  path: string,
): Promise<void> {
  try {
    await operation();
  } catch (error) {
    throw new FileAccessError(
      `Cannot ${action} '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
}

/**
 * Removes a file, ignoring every error (used while cleaning up).
 *
 * @example Usage
 * ```ts
 * import { removeQuietly } from "./atomic_file.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await removeQuietly(path);
 * await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
 * // Already gone: nothing thrown.
 * await removeQuietly(path);
 * ```
 *
 * @param path The file.
 */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Nothing to clean up, or nothing more that can be done.
  }
}

function isNotSupported(error: unknown): boolean {
  return error instanceof Error && "code" in error &&
    (error.code === "ENOTSUP" || error.code === "EOPNOTSUPP" ||
      error.code === "ENOSYS" || error.code === "EXDEV");
}
