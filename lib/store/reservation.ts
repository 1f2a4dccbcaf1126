/**
 * A crash's sidecar, written FIRST: before a byte of the core is stored,
 * the capture creates `Core_<...>.json` exclusively (`O_EXCL`, so the name
 * is its own and no other crash's), padded to reserve room, and synced. The
 * record then always exists: if the disk fills up, the final record is
 * written over the reserved bytes; if the capture is killed, the record
 * says it was under way, and the next capture marks it interrupted.
 *
 * @module
 */

import { writeFileAtomic } from "../fs/mod.ts";
import { FileAccessError, fsReason, writeAll } from "../fs/mod.ts";

/** Bytes reserved for a sidecar: a record with hundreds of modules fits. */
export const RESERVATION_BYTES = 32 << 10;

/** The sidecar of a capture, reserved and open. */
export interface SidecarReservation {
  /** Its path. */
  readonly path: string;
  /** Bytes it takes on disk now. */
  readonly bytes: number;
  /** Writes a new record over the reserved bytes (records under way). */
  update(record: unknown): Promise<void>;
  /**
   * Writes the final record: atomically by a new file and a rename when
   * there is room, else over the reserved bytes. Closes the reservation.
   */
  finish(record: unknown, fallback?: unknown): Promise<void>;
  /** Closes the file without writing (the record stays as it is). */
  close(): void;
}

/**
 * Creates the sidecar at `path` exclusively, with `record` padded to
 * {@linkcode RESERVATION_BYTES}, synced.
 *
 * @param path The sidecar's path.
 * @param record The first record (a capture under way).
 * @param options The file's permission bits.
 * @returns The open reservation.
 * @throws {Deno.errors.AlreadyExists} When the name is taken.
 * @throws {FileAccessError} When it cannot be created or written.
 *
 * @example Usage
 * ```ts
 * import { RESERVATION_BYTES, reserveSidecar } from "./reservation.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * const path = `${store}/Core_20260101_000000.json`;
 * const sidecar = await reserveSidecar(path, { state: "capturing" }, {
 *   mode: 0o600,
 * });
 * assert.equal(sidecar.bytes, RESERVATION_BYTES);
 * assert.equal((await Deno.stat(path)).size, RESERVATION_BYTES);
 * // The name is this capture's own.
 * await assert.rejects(
 *   reserveSidecar(path, {}, { mode: 0o600 }),
 *   Deno.errors.AlreadyExists,
 * );
 * await sidecar.update({ state: "capturing", claim: 4096 });
 * await sidecar.finish({ state: "done" });
 * assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), { state: "done" });
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function reserveSidecar(
  path: string,
  record: unknown,
  options: { mode: number },
): Promise<SidecarReservation> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, {
      write: true,
      createNew: true,
      mode: options.mode,
    });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw error;
    throw new FileAccessError(
      `Cannot create the sidecar '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
  let size = 0;
  const writeOver = async (text: Uint8Array) => {
    await file.seek(0, Deno.SeekMode.Start);
    await writeAll(file, text);
  };
  const padded = (value: unknown, length: number) => {
    const text = encode(value);
    if (text.length >= length) return text;
    const out = new Uint8Array(length).fill(0x20);
    out.set(text);
    out[length - 1] = 0x0a;
    return out;
  };
  // On a nearly full disk, less room reserved is better than no record.
  for (const reserve of [RESERVATION_BYTES, 4096, 0]) {
    try {
      const first = padded(record, reserve);
      await writeOver(first);
      size = first.length;
      await file.sync();
      break;
    } catch (error) {
      await file.truncate(0).catch(() => {});
      if (reserve > 0) continue;
      file.close();
      await Deno.remove(path).catch(() => {});
      throw new FileAccessError(
        `Cannot write the sidecar '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
  }
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return {
    path,
    get bytes() {
      return size;
    },
    async update(value) {
      const text = padded(value, size);
      await writeOver(text);
      size = Math.max(size, text.length);
    },
    async finish(value, fallback) {
      try {
        await writeFileAtomic(path, ReadableStream.from([encode(value)]), {
          mode: options.mode,
          replace: true,
        });
        close();
        return;
      } catch {
        // No room for a second file: write over the reserved bytes.
      }
      try {
        let text = encode(value);
        if (text.length > size && fallback !== undefined) {
          text = encode(fallback);
        }
        await writeOver(text);
        await file.truncate(text.length);
        await file.sync();
      } catch (error) {
        throw new FileAccessError(
          `Cannot write the sidecar '${path}': ${fsReason(error)}`,
          path,
          { cause: error },
        );
      } finally {
        close();
      }
    },
    close,
  };
}

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n");
}
