/**
 * Opening paths that others may control, for reading, without blocking and
 * without following what should not be followed.
 *
 * @module
 */

import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { FileAccessError, fsReason } from "./errors.ts";

/** Options for {@linkcode openRegularFile}. */
export interface OpenRegularFileOptions {
  /**
   * Refuse a path whose last component is a symbolic link (for paths that
   * others control; not for `/proc/<pid>/exe`, which is one).
   *
   * @default {false}
   */
  noFollow?: boolean;
}

/**
 * Opens a path for reading only when it is a regular file, without ever
 * blocking: it is opened `O_NONBLOCK` (a FIFO or a device swapped in for a
 * hostile path opens at once, and is refused), then checked with `fstat`
 * on the open file, then reopened through `/proc/self/fd` for ordinary
 * reads of exactly that file.
 *
 * @example Usage
 * ```ts
 * import { openRegularFile } from "./open_regular.ts";
 * import { FileAccessError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/program`, "ELF");
 * await Deno.symlink(`${dir}/program`, `${dir}/link`);
 * {
 *   using file = await openRegularFile(`${dir}/program`);
 *   assert.equal((await file.stat()).size, 3);
 * }
 * // A FIFO opens at once, and is refused.
 * const fifo = new Deno.Command("mkfifo", { args: [`${dir}/fifo`] });
 * assert.equal((await fifo.output()).code, 0);
 * await assert.rejects(openRegularFile(`${dir}/fifo`), FileAccessError);
 * await assert.rejects(openRegularFile(dir), FileAccessError);
 * await assert.rejects(
 *   openRegularFile(`${dir}/link`, { noFollow: true }),
 *   /it is a symbolic link/,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The file.
 * @param options Whether to refuse a symbolic link.
 * @returns The open file.
 * @throws {FileAccessError} When it is missing, not a regular file or unreadable.
 */
export async function openRegularFile(
  path: string,
  options: OpenRegularFileOptions = {},
): Promise<Deno.FsFile> {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK |
    constants.O_NOCTTY | (options.noFollow ? constants.O_NOFOLLOW : 0);
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new FileAccessError(
      code === "ELOOP" && options.noFollow
        ? `Cannot read '${path}': it is a symbolic link, expected a regular file`
        : `Cannot read '${path}': ${nodeReason(error)}`,
      path,
      { cause: error },
    );
  }
  try {
    if (!fstatSync(fd).isFile()) {
      throw new FileAccessError(
        `Cannot read '${path}': it is not a regular file`,
        path,
      );
    }
    return await Deno.open(`/proc/self/fd/${fd}`, { read: true });
  } catch (error) {
    if (error instanceof FileAccessError) throw error;
    throw new FileAccessError(
      `Cannot read '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  } finally {
    closeSync(fd);
  }
}

/** The reason of a `node:fs` error in words, without its code and path. */
function nodeReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^[A-Z]+: ([^,]+)/.exec(message);
  return match === null ? fsReason(error) : match[1]!.toLowerCase();
}
