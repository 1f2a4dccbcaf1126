/**
 * Private: a file created new under a random name, for the files this
 * folder makes (`atomic_file.ts`, whose file is renamed into place, and
 * `spill_file.ts`, whose file is unlinked at once).
 *
 * @module
 */

import { join } from "node:path";
import { FileAccessError, fsReason } from "./errors.ts";

/** Options for {@linkcode createNewFile}. */
export interface NewFileOptions {
  /** The file's name for a random suffix of 8 hex digits. */
  name: (suffix: string) => string;
  /** What it is, for the message: "a file", "a spill file". */
  what: string;
  /** Permission bits. */
  mode: number;
  /**
   * Open it for reading too.
   *
   * @default {false}
   */
  read?: boolean;
}

/**
 * Creates a file in `directory` that did not exist (`O_EXCL`: never an
 * existing file, nor a link planted in its place), under a random name,
 * trying another name when one is taken.
 *
 * @example Usage
 * ```ts
 * import { createNewFile } from "./_new_file.ts";
 * import assert from "node:assert/strict";
 *
 * const directory = await Deno.makeTempDir();
 * const made = createNewFile(directory, {
 *   name: (suffix) => `.x-${suffix}`,
 *   what: "a file",
 *   mode: 0o600,
 * });
 * made.file.close();
 * assert.match(made.path, /\/\.x-[0-9a-f]{8}$/);
 * assert.equal(Deno.statSync(made.path).mode! & 0o777, 0o600);
 * ```
 *
 * @param directory Where it is made.
 * @param options Its name, mode, and how it is opened.
 * @returns The open file and its path.
 * @throws {FileAccessError} When it cannot be created: "Cannot create
 * `what` in 'directory': reason".
 */
export function createNewFile(
  directory: string,
  options: NewFileOptions,
): { file: Deno.FsFile; path: string } {
  for (let attempt = 0;; attempt++) {
    const suffix = crypto.getRandomValues(new Uint32Array(1))[0]!
      .toString(16).padStart(8, "0");
    const path = join(directory, options.name(suffix));
    try {
      const file = Deno.openSync(path, {
        read: options.read ?? false,
        write: true,
        createNew: true,
        mode: options.mode,
      });
      return { file, path };
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists && attempt < 10) continue;
      throw new FileAccessError(
        `Cannot create ${options.what} in '${directory}': ${fsReason(error)}`,
        directory,
        { cause: error },
      );
    }
  }
}
