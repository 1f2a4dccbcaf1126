/**
 * `gzcoredump uuid PROG`: the bytes of a program's `.uuid` section, exactly.
 *
 * @module
 */

import { readProgramInfo } from "../../elf/mod.ts";

/** The program has no `.uuid` section. */
export class NoUuidError extends Error {
  /** Creates the error for the program's path. */
  constructor(path: string) {
    super(
      `Cannot print the .uuid of '${path}': it has no .uuid section, expected one added by objcopy or 'gzcoredump stamp'`,
    );
    this.name = "NoUuidError";
  }
}

/** Largest `.uuid` printed whole. */
const MAX_PRINTED = 1 << 20;

/**
 * Reads a program's `.uuid` section.
 *
 * @param path The program.
 * @returns The section's bytes, exactly (up to 1 MiB).
 * @throws {NoUuidError} When there is no `.uuid` section.
 *
 * @example Usage
 * ```ts ignore
 * import { readUuid } from "./uuid_command.ts";
 * const bytes = await readUuid("/usr/bin/app");
 * ```
 */
export async function readUuid(path: string): Promise<Uint8Array> {
  const info = await readProgramInfo(path, { maxUuidBytes: MAX_PRINTED });
  if (info.uuid === undefined) throw new NoUuidError(path);
  return info.uuid;
}
