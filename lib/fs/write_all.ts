/**
 * Writing a buffer whole: a write may take only part of it (a pipe, a
 * signal, a large buffer).
 *
 * Each write asks for at most {@linkcode WRITE_PIECE} bytes, or the
 * `piece` option's. The page cache sizes the pages it adds to a file by the
 * write: a write of 1 MiB takes pages in runs of 1 MiB, which a virtual
 * machine's kernel has often given back to its host (free page reporting),
 * so each is faulted in again. Measured on this project's 2-core VM, 512 MiB
 * written to a new file after 12 s idle: 1.1-2.7 ms a MiB in writes of 1
 * MiB, 0.25-0.5 ms a MiB in writes of 512, 256 or 128 KiB (`dd`), and
 * decompressing a 269 MB core took 0.31-0.36 s against 0.32-0.94 s. Some
 * writers do better with less ({@linkcode SHORT_WRITE_PIECE}).
 *
 * @module
 */

/** The most bytes one write asks for by default: 256 KiB. */
export const WRITE_PIECE = 256 << 10;

/**
 * A shorter piece, 32 KiB, for files whose chunks come in new buffers (the
 * decompressed files: `writeFileAtomic()` with `sparse`). Measured on this
 * project's VM, in turns: decompressing 1 GB of random bytes took 0.87-1.04
 * s against 1.77-4.80 s in pieces of 256 KiB (6 rounds), the python, node
 * and mixed cores 0.70-1.19 s against 0.69-2.29 s (4 rounds); writing 1 GB
 * with `dd` (5 rounds), 0.47-1.12 s in writes of 32 KiB, 0.40-1.78 s of 64,
 * 0.58-1.75 s of 256 and 2.14-2.42 s of 1024. Probably because the kernel
 * takes runs of up to 32 KiB (order 3) from its per-CPU lists of pages it
 * has just freed, and larger ones from the free lists that a virtual
 * machine gives back to its host. Compression keeps the default: `-c -f`
 * of the same bytes, whose buffers are reused, took 1.32-1.74 s in pieces
 * of 32 KiB against 1.05-1.93 s; so does stdout, whose writes are
 * asynchronous (2.3-3.0 s against 1.2-1.4 s).
 */
export const SHORT_WRITE_PIECE = 32 << 10;

/** Options for {@linkcode writeAll} and {@linkcode writeAllSync}. */
export interface WriteAllOptions {
  /**
   * The most bytes one write asks for, at least 1.
   *
   * @default {WRITE_PIECE}
   */
  piece?: number;
}

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
 * Writes all of `bytes` at the writer's position, in writes of at most
 * {@linkcode WRITE_PIECE} bytes (or `options.piece`).
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
 * @param options The size of each write.
 * @throws {RangeError} When `options.piece` is not a whole number of bytes,
 * at least 1.
 */
export async function writeAll(
  writer: Writer,
  bytes: Uint8Array,
  options: WriteAllOptions = {},
): Promise<void> {
  const piece = pieceOf(options);
  for (let done = 0; done < bytes.length;) {
    done += await writer.write(bytes.subarray(done, done + piece));
  }
}

/**
 * Writes all of `bytes` at the writer's position, synchronously, in writes
 * of at most {@linkcode WRITE_PIECE} bytes (or `options.piece`).
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
 * @example Shorter writes
 * ```ts
 * import { SHORT_WRITE_PIECE, writeAllSync } from "./write_all.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * using file = Deno.openSync(path, { write: true });
 * writeAllSync(file, new Uint8Array(100_000).fill(1), {
 *   piece: SHORT_WRITE_PIECE,
 * });
 * assert.equal(Deno.statSync(path).size, 100_000);
 * ```
 *
 * @param writer The file.
 * @param bytes What to write.
 * @param options The size of each write.
 * @throws {RangeError} When `options.piece` is not a whole number of bytes,
 * at least 1.
 */
export function writeAllSync(
  writer: WriterSync,
  bytes: Uint8Array,
  options: WriteAllOptions = {},
): void {
  const piece = pieceOf(options);
  for (let done = 0; done < bytes.length;) {
    done += writer.writeSync(bytes.subarray(done, done + piece));
  }
}

function pieceOf(options: WriteAllOptions): number {
  const { piece = WRITE_PIECE } = options;
  if (!Number.isSafeInteger(piece) || piece < 1) {
    throw new RangeError(
      `Cannot write: expected options.piece to be a whole number of bytes, at least 1, found ${piece}`,
    );
  }
  return piece;
}
