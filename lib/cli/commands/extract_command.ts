/**
 * `gzcoredump extract ID -o FILE`: the raw core of a stored crash, written
 * sparse (holes for zero pages), `0600`, never over an existing file unless
 * forced.
 *
 * @module
 */

import { join } from "node:path";
import { type CoreRecord, findCore } from "../../store/mod.ts";
import { decompress } from "../../compress/mod.ts";
import { openRegularFile, writeOutput } from "../../fs/mod.ts";
import { isClosedReader } from "./decompress_command.ts";

/** The stored crash has no archive: only its metadata was kept. */
export class NoArchiveError extends Error {
  /** Creates the error for the entry and the reason it was not stored. */
  constructor(base: string, reason: string | null | undefined) {
    super(
      `Cannot extract '${base}': only its metadata was kept${
        reason ? ` (${reason})` : ""
      }, expected a stored core`,
    );
    this.name = "NoArchiveError";
  }
}

/**
 * The path of a stored core's archive.
 *
 * @param directory The store.
 * @param id A file name or a program name.
 * @returns The archive's path and the record.
 * @throws {NoArchiveError} When only metadata was kept.
 */
export async function archiveOf(
  directory: string,
  id: string,
): Promise<{ path: string; record: CoreRecord }> {
  const record = await findCore(directory, id);
  if (record.entry.archive === undefined) {
    throw new NoArchiveError(record.entry.base, record.metadata?.reason);
  }
  return { path: join(directory, record.entry.archive), record };
}

/** Options for {@linkcode extractCore}. */
export interface ExtractOptions {
  /** The raw core's path; `-` is stdout. */
  output: string;
  /**
   * Replace an existing file.
   *
   * @default {false}
   */
  force?: boolean;
}

/**
 * Writes the raw core of a stored crash to `output`, sparse; `-` is stdout,
 * where a reader that closes the pipe early (`| head`) ends it quietly.
 *
 * @param directory The store.
 * @param id A file name or a program name (its newest core).
 * @param options Output path (`-`: stdout), and whether to replace an
 * existing file.
 * @returns The output path.
 *
 * @example Usage
 * ```ts ignore
 * import { extractCore } from "./extract_command.ts";
 * await extractCore("/var/crash", "a.out", { output: "core" });
 * ```
 */
export async function extractCore(
  directory: string,
  id: string,
  options: ExtractOptions,
): Promise<string> {
  const { path } = await archiveOf(directory, id);
  const file = await openRegularFile(path);
  try {
    return await writeOutput(
      options.output,
      decompress(file.readable, {
        label: `'${path}'`,
        size: (await file.stat()).size,
      }),
      { force: options.force ?? false, sparse: true },
    );
  } catch (error) {
    if (options.output === "-" && isClosedReader(error)) return "-";
    throw error;
  }
}
