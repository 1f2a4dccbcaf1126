/**
 * `gzcoredump -c -f IN [-o OUT]`: compress a file (or stdin) to gzip or zlib.
 *
 * @module
 */

import { compress, type Format, formatExtension } from "../../compress/mod.ts";
import {
  openInput,
  type ProgressCallback,
  progressStream,
  writeOutput,
} from "../../fs/mod.ts";
import { compact } from "../../util/mod.ts";

export type { ProgressCallback } from "../../fs/mod.ts";

/** Options for {@linkcode compressFile}. */
export interface CompressFileOptions {
  /**
   * Output path; `-` is stdout. Default: the input plus `.gz` or `.zz`, or
   * stdout when the input is stdin.
   *
   * @default {undefined}
   */
  output?: string;
  /**
   * The container format.
   *
   * @default {"gzip"}
   */
  format?: Format;
  /**
   * Compression level; undefined uses `CompressionStream`.
   *
   * @default {undefined}
   */
  level?: number;
  /**
   * Worker threads.
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
  /**
   * Replace an existing output file.
   *
   * @default {false}
   */
  force?: boolean;
  /**
   * Called as the input is read.
   *
   * @default {undefined}
   */
  onProgress?: ProgressCallback;
}

/**
 * Compresses a file. The input is kept; the output is created `0600` and
 * appears only when complete.
 *
 * @param input Input path, or `-` for stdin.
 * @param options Output, format, level.
 * @returns The output path, or `-` for stdout.
 *
 * @example Usage
 * ```ts
 * import { compressFile } from "./compress_command.ts";
 * import { gunzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/big.log`, "line\n".repeat(10_000));
 * assert.equal(await compressFile(`${dir}/big.log`, { jobs: 1 }), `${dir}/big.log.gz`);
 * const text = new TextDecoder().decode(gunzipSync(await Deno.readFile(`${dir}/big.log.gz`)));
 * assert.equal(text, "line\n".repeat(10_000));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function compressFile(
  input: string,
  options: CompressFileOptions = {},
): Promise<string> {
  const { format = "gzip", level, force = false, onProgress } = options;
  const output = options.output ??
    (input === "-" ? "-" : input + formatExtension(format));
  const source = await openInput(input);
  let data = source.readable;
  if (onProgress) {
    data = data.pipeThrough(progressStream(source.size, onProgress));
  }
  // A file (not stdout) gets the chunk index that parallel decompression
  // reads: it is written over the header once the data is complete.
  const index = output === "-" ? undefined : {
    expectedSize: () => source.size,
  };
  const compressed = compress(data, {
    format,
    ...compact({ level, jobs: options.jobs, index }),
  });
  return await writeOutput(output, compressed, {
    force,
    amend: compressed.amendment,
    // The input's mode and times, as gzip keeps them.
    ...compact({ like: source.stat }),
  });
}
