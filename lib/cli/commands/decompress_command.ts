/**
 * `gzcoredump -d -f IN [-o OUT]`: decompress a gzip or zlib file (or stdin);
 * the format is told from the data, not the name.
 *
 * @module
 */

import { UsageError } from "../args.ts";
import { decompress } from "../../compress/mod.ts";
import {
  openInput,
  type ProgressCallback,
  progressStream,
  writeOutput,
} from "../../fs/mod.ts";
import { compact } from "../../util/mod.ts";

/** Options for {@linkcode decompressFile}. */
export interface DecompressFileOptions {
  /**
   * Output path; `-` is stdout. Default: the input without `.gz`, `.zz` or
   * `.z` (`.tgz` becomes `.tar`), or stdout when the input is stdin.
   *
   * @default {undefined}
   */
  output?: string;
  /**
   * Replace an existing output file.
   *
   * @default {false}
   */
  force?: boolean;
  /**
   * Worker threads for a file written by the parallel compressor.
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
  /**
   * Called as the input is read.
   *
   * @default {undefined}
   */
  onProgress?: ProgressCallback;
}

/**
 * The default output name for a compressed file.
 *
 * @param input The compressed file's path.
 * @returns The path without its compression extension.
 * @throws {UsageError} When the name has no known extension.
 *
 * @example Usage
 * ```ts
 * import { decompressedName } from "./decompress_command.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decompressedName("Core_20261126_090507_a.out.gz"), "Core_20261126_090507_a.out");
 * assert.throws(() => decompressedName("core"), /expected a name ending in \.gz/);
 * ```
 */
export function decompressedName(input: string): string {
  const match = /^(.*[^/])\.(gz|zz|z|tgz)$/i.exec(input);
  if (match === null) {
    throw new UsageError(
      `Cannot choose an output name for '${input}': expected a name ending in .gz, .zz or .z, or an explicit '-o OUT'`,
    );
  }
  return match[2]!.toLowerCase() === "tgz" ? `${match[1]}.tar` : match[1]!;
}

/**
 * Decompresses a gzip (any number of members) or zlib file. The input is
 * kept; the output is created `0600` and appears only when the whole stream
 * decoded and its checksums matched. To stdout (`-`), a reader that closes
 * the pipe early (`| head`) ends it quietly.
 *
 * @param input Input path, or `-` for stdin.
 * @param options Output path and overwrite policy.
 * @returns The output path, or `-` for stdout.
 * @throws {ArchiveFormatError} For data that is not a valid stream.
 *
 * @example Usage
 * ```ts
 * import { decompressFile } from "./decompress_command.ts";
 * import { gzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/core.gz`, gzipSync(new TextEncoder().encode("core")));
 * assert.equal(await decompressFile(`${dir}/core.gz`), `${dir}/core`);
 * assert.equal(await Deno.readTextFile(`${dir}/core`), "core");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function decompressFile(
  input: string,
  options: DecompressFileOptions = {},
): Promise<string> {
  const { force = false, onProgress } = options;
  const output = options.output ??
    (input === "-" ? "-" : decompressedName(input));
  const source = await openInput(input);
  let data = source.readable;
  if (onProgress) {
    data = data.pipeThrough(progressStream(source.size, onProgress));
  }
  try {
    return await writeOutput(
      output,
      decompress(data, {
        label: source.label,
        ...compact({ size: source.size, jobs: options.jobs }),
      }),
      // Zero pages become holes, as in the cores the kernel writes; the
      // input's mode and times are kept, as gzip -d keeps them.
      { force, sparse: true, ...compact({ like: source.stat }) },
    );
  } catch (error) {
    if (output === "-" && isClosedReader(error)) return output;
    throw error;
  }
}

/**
 * True for the error of writing to a pipe whose reader has gone, as
 * `... -o - | head -c 1` leaves stdout: the reader has what it wanted, so
 * the commands writing to stdout end quietly and successfully, as
 * `gzip -c | head` does from the user's view.
 *
 * @param error What a write to stdout threw.
 * @returns Whether it is EPIPE.
 *
 * @example Usage
 * ```ts
 * import { isClosedReader } from "./decompress_command.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isClosedReader(new Deno.errors.BrokenPipe("Broken pipe (os error 32)")));
 * assert.ok(!isClosedReader(new Deno.errors.NotFound("gone")));
 * ```
 */
export function isClosedReader(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe;
}
