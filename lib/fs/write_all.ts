/**
 * Writing a buffer whole: a write may take only part of it (a pipe, a
 * signal, a large buffer).
 *
 * @module
 */

/** What {@linkcode writeAll} writes to: a file, stdout, a socket. */
export interface Writer {
  /** Writes some of `bytes`; resolves to how many. */
  write(bytes: Uint8Array): Promise<number>;
}

/** What {@linkcode writeAllSync} writes to. */
export interface WriterSync {
  /** Writes some of `bytes`; returns how many. */
  writeSync(bytes: Uint8Array): number;
}

/**
 * Writes all of `bytes` at the writer's position.
 *
 * @example Usage
 * ```ts
 * import { writeAll } from "./write_all.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * await writeAll(file, new Uint8Array(3 << 20).fill(7));
 * assert.equal((await Deno.stat(path)).size, 3 << 20);
 * ```
 *
 * @param writer The file, or stdout.
 * @param bytes What to write.
 */
export async function writeAll(
  writer: Writer,
  bytes: Uint8Array,
): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await writer.write(bytes.subarray(done));
  }
}

/**
 * Writes all of `bytes` at the writer's position, synchronously.
 *
 * @example Usage
 * ```ts
 * import { writeAllSync } from "./write_all.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * using file = Deno.openSync(path, { write: true });
 * writeAllSync(file, new Uint8Array(3 << 20).fill(7));
 * assert.equal(Deno.statSync(path).size, 3 << 20);
 * ```
 *
 * @param writer The file.
 * @param bytes What to write.
 */
export function writeAllSync(writer: WriterSync, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) {
    done += writer.writeSync(bytes.subarray(done));
  }
}
