/**
 * The errors of file access: what was done, to which path, and why, in
 * words.
 *
 * @module
 */

import { errorText } from "../util/mod.ts";

/** A file could not be opened, read, written or published. */
export class FileAccessError extends Error {
  /** The path the operation was on. */
  readonly path: string;
  /** Creates the error for an operation on a path. */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FileAccessError";
    this.path = path;
  }
}

/** The output file exists and replacing it was not asked for. */
export class FileExistsError extends FileAccessError {
  /** Creates the error for the existing path. */
  constructor(path: string) {
    super(
      `Cannot write '${path}': a file of that name exists, expected a new name (existing files are never overwritten)`,
      path,
    );
    this.name = "FileExistsError";
  }
}

/** A file ended before the bytes a read asked for. */
export class ShortReadError extends Error {
  /** Where the file ended. */
  readonly offset: number;
  /** Creates the error for a file that ends at `offset`. */
  constructor(message: string, offset: number) {
    super(message);
    this.name = "ShortReadError";
    this.offset = offset;
  }
}

/**
 * The reason of a file-system error, in words: "no such file or directory",
 * "no space left on device" ...
 *
 * @param error A thrown value from a `Deno` file-system call.
 * @returns The operating system's reason, lower case, without the error number.
 *
 * @example Usage
 * ```ts
 * import { fsReason } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   fsReason(new Error("No such file or directory (os error 2): open 'x'")),
 *   "no such file or directory",
 * );
 * const error = await Deno.stat("/nonexistent/core").catch((e) => e);
 * assert.equal(fsReason(error), "no such file or directory");
 * ```
 */
export function fsReason(error: unknown): string {
  if (error instanceof FileAccessError) return errorText(error);
  const text = errorText(error).replace(/ \(os error \d+\).*$/, "");
  return text.charAt(0).toLowerCase() + text.slice(1);
}
