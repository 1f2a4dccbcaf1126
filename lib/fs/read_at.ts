/**
 * Positioned reads of exactly the bytes asked for.
 *
 * @module
 */

import { ShortReadError } from "./errors.ts";

/**
 * Reads exactly `length` bytes at `offset` of an open file.
 *
 * @example Reads a range, and refuses one past the end
 * ```ts
 * import { readFileAt } from "./read_at.ts";
 * import { ShortReadError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3, 4]));
 * using file = await Deno.open(path);
 * assert.deepEqual(await readFileAt(file, 1, 2), new Uint8Array([2, 3]));
 * await assert.rejects(() => readFileAt(file, 2, 4), ShortReadError);
 * await Deno.remove(path);
 * ```
 *
 * @param file The open file.
 * @param offset Where to start.
 * @param length How many bytes.
 * @returns The bytes.
 * @throws {ShortReadError} When the file ends first.
 */
export async function readFileAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) {
      throw new ShortReadError(
        `Cannot read ${length} bytes at offset ${offset}: the file ends after ${
          offset + filled
        }`,
        offset + filled,
      );
    }
    filled += n;
  }
  return out;
}
