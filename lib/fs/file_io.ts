/**
 * Private helpers for the file commands: opening the input (a path or `-`
 * for stdin), counting progress, and writing the output (a new file or `-`
 * for stdout).
 *
 * @module
 */

import { type Amendment, writeFileAtomic } from "./atomic_file.ts";
import { FileAccessError, FileExistsError, fsReason } from "./errors.ts";
import { writeAll } from "./write_all.ts";
import { compact, disposeChunk } from "../util/mod.ts";

/** Reports bytes read so far and the input size when known. */
export type ProgressCallback = (
  done: number,
  total: number | undefined,
) => void;

/** An opened input. */
export interface Input {
  /** The bytes: a byte stream for files, so BYOB reads work. */
  readable: ReadableStream<Uint8Array>;
  /** The size of a regular file; undefined for pipes and stdin. */
  size: number | undefined;
  /** How messages name it. */
  label: string;
  /** A regular file's permission bits and times, for its output (gzip keeps them). */
  stat?: { mode: number; atime: Date | null; mtime: Date | null };
}

/**
 * Opens a path for reading, or stdin for `-`.
 *
 * @example Usage
 * ```ts
 * import { openInput } from "./file_io.ts";
 * import { FileAccessError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "core");
 * const input = await openInput(path);
 * assert.equal(input.size, 4);
 * assert.equal(input.label, `'${path}'`);
 * assert.equal(await new Response(input.readable).text(), "core");
 * assert.equal((await openInput("-")).label, "stdin");
 * await assert.rejects(openInput(`${path}.missing`), FileAccessError);
 * await Deno.remove(path);
 * ```
 *
 * @param path The file, or `-`.
 * @returns The stream, its size when known, and its name for messages.
 * @throws {FileAccessError} When it cannot be opened or is a directory.
 */
export async function openInput(path: string): Promise<Input> {
  if (path === "-") {
    return { readable: Deno.stdin.readable, size: undefined, label: "stdin" };
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new FileAccessError(
      `Cannot read '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
  const info = await file.stat();
  if (info.isDirectory) {
    file.close();
    throw new FileAccessError(
      `Cannot read '${path}': it is a directory, expected a file`,
      path,
    );
  }
  return {
    // The file's own byte stream: the parallel compressor reads it with
    // BYOB reads into reused buffers.
    readable: mapErrors(file.readable, path),
    size: info.isFile ? info.size : undefined,
    label: `'${path}'`,
    ...(info.isFile && info.mode !== null
      ? {
        stat: { mode: info.mode & 0o777, atime: info.atime, mtime: info.mtime },
      }
      : {}),
  };
}

/** Bytes per read when a consumer does not bring its own buffer. */
const READ_CHUNK = 1 << 20;

/** Turns read errors of a file into {@linkcode FileAccessError}s. */
function mapErrors(
  readable: ReadableStream<Uint8Array>,
  path: string,
): ReadableStream<Uint8Array> {
  // A byte stream again, so that consumers can still read it with BYOB
  // reads into buffers of their own.
  const reader = readable.getReader({ mode: "byob" });
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: READ_CHUNK,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      try {
        const { value, done } = await reader.read(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
        if (done) {
          controller.close();
          if (value !== undefined) request.respondWithNewView(value);
          return;
        }
        request.respondWithNewView(value);
      } catch (error) {
        controller.error(
          new FileAccessError(
            `Cannot read '${path}': ${fsReason(error)}`,
            path,
            {
              cause: error,
            },
          ),
        );
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/**
 * Passes bytes through, calling `onProgress` at most every 100 ms.
 *
 * @example Usage
 * ```ts
 * import { progressStream } from "./file_io.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: [number, number | undefined][] = [];
 * const chunks = [new Uint8Array(3), new Uint8Array(5)];
 * const out = ReadableStream.from(chunks).pipeThrough(
 *   progressStream(undefined, (done, total) => seen.push([done, total])),
 * );
 * assert.equal((await new Response(out).bytes()).length, 8);
 * // Last, the end: the size is known once it is reached.
 * assert.deepEqual(seen.at(-1), [8, 8]);
 * ```
 *
 * @param total The input's size when known.
 * @param onProgress Receives the bytes passed so far and the size.
 * @returns The counting transform.
 */
export function progressStream(
  total: number | undefined,
  onProgress: ProgressCallback,
): TransformStream<Uint8Array, Uint8Array> {
  let done = 0;
  let last = 0;
  return new TransformStream({
    transform(chunk, controller) {
      done += chunk.length;
      const now = performance.now();
      if (now - last >= 100) {
        last = now;
        onProgress(done, total);
      }
      controller.enqueue(chunk);
    },
    flush() {
      // The end: a stream of unknown size is now known to be complete.
      onProgress(done, total ?? done);
    },
  });
}

/**
 * Writes a stream to a new file (`0600`, published only when complete), or
 * to stdout for `-`.
 *
 * @example Usage
 * ```ts
 * import { writeOutput } from "./file_io.ts";
 * import { FileExistsError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/core`;
 * const data = (text: string) =>
 *   ReadableStream.from([new TextEncoder().encode(text)]);
 * assert.equal(await writeOutput(path, data("one"), { force: false }), path);
 * await assert.rejects(
 *   writeOutput(path, data("two"), { force: false }),
 *   FileExistsError,
 * );
 * await writeOutput(path, data("two"), { force: true });
 * assert.equal(await Deno.readTextFile(path), "two");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The new file, or `-`.
 * @param data The bytes.
 * @param options `force` replaces an existing regular file; `sparse`
 * leaves holes for blocks of zeros; `amend` is written over the file at
 * the end.
 * @returns The path written, or `-`.
 * @throws {FileExistsError} When the file exists and `force` is not set.
 * @throws {FileAccessError} When it cannot be written.
 */
export async function writeOutput(
  path: string,
  data: ReadableStream<Uint8Array>,
  options: {
    force: boolean;
    sparse?: boolean;
    amend?: Amendment;
    /** The input's mode and times, given to the output as gzip does. */
    like?: Input["stat"];
  },
): Promise<string> {
  if (path === "-") {
    await data.pipeTo(stdoutSink());
    return path;
  }
  // Fail before the work, not after it; publishing checks again.
  let existing: Deno.FileInfo | undefined;
  try {
    existing = await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      await data.cancel().catch(() => {});
      throw new FileAccessError(
        `Cannot write '${path}': ${fsReason(error)}`,
        path,
        {
          cause: error,
        },
      );
    }
  }
  if (existing !== undefined && (!options.force || !existing.isFile)) {
    await data.cancel().catch(() => {});
    throw existing.isFile ? new FileExistsError(path) : new FileAccessError(
      `Cannot write '${path}': it exists and is not a regular file`,
      path,
    );
  }
  const written = await writeFileAtomic(path, data, {
    mode: options.like?.mode ?? 0o600,
    replace: options.force,
    sparse: options.sparse ?? false,
    // The input is kept: like gzip and zstd, no fsync (a stored core from
    // the capture path is synced).
    sync: false,
    ...compact({ amend: options.amend }),
  });
  const { like } = options;
  if (like?.mtime) {
    await Deno.utime(written, like.atime ?? like.mtime, like.mtime).catch(
      () => {},
    );
  }
  return written;
}

/**
 * Writes each chunk whole to stdout, then frees a chunk its producer gave
 * away (`disposableChunk`); stdout is left open.
 */
function stdoutSink(): WritableStream<Uint8Array> {
  return new WritableStream({
    async write(chunk) {
      await writeAll(Deno.stdout, chunk);
      disposeChunk(chunk);
    },
  });
}
