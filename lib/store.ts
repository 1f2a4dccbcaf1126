/**
 * The crash store: the directory cores are written to. It holds private
 * memory, so it is created `0700` and never reached through a symlink.
 *
 * @module
 */

import { FileAccessError, fsReason } from "./atomic_file.ts";

/** The store directory is unusable: a symlink, not a directory, or not creatable. */
export class StoreDirectoryError extends FileAccessError {
  /** Creates the error for the directory. */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, path, options);
    this.name = "StoreDirectoryError";
  }
}

/**
 * Makes sure `path` is a directory that may hold cores: creates it (and its
 * parents) with mode `0700` when missing; refuses a symlink or a
 * non-directory. An existing directory keeps its mode.
 *
 * @param path The store directory.
 * @throws {StoreDirectoryError} When the directory cannot be used.
 *
 * @example Usage
 * ```ts ignore
 * import { preparePrivateDirectory } from "./store.ts";
 * await preparePrivateDirectory("/var/crash");
 * ```
 */
export async function preparePrivateDirectory(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new StoreDirectoryError(
        `Cannot use store directory '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
    try {
      await Deno.mkdir(path, { recursive: true, mode: 0o700 });
      await Deno.chmod(path, 0o700);
    } catch (error) {
      throw new StoreDirectoryError(
        `Cannot create store directory '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
    info = await Deno.lstat(path);
  }
  if (info.isSymlink) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': it is a symbolic link, expected a real directory`,
      path,
    );
  }
  if (!info.isDirectory) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': it is not a directory`,
      path,
    );
  }
}

/**
 * Checks that files can be created in a directory (not a read-only mount,
 * not out of inodes) by creating and removing an empty hidden file.
 *
 * @param path The directory.
 * @throws {StoreDirectoryError} When no file can be created there.
 *
 * @example Usage
 * ```ts ignore
 * import { checkWritable } from "./store.ts";
 * await checkWritable("/var/crash");
 * ```
 */
export async function checkWritable(path: string): Promise<void> {
  let probe: string;
  try {
    probe = await Deno.makeTempFile({
      dir: path,
      prefix: ".gzcoredump-probe-",
    });
  } catch (error) {
    throw new StoreDirectoryError(
      `Cannot create files in store directory '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
  await Deno.remove(probe);
}
