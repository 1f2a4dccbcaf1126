/**
 * Private: writes and reads that bypass the page cache (`O_DIRECT`), for
 * the two files a capture fills while the crashed process waits (the
 * archive and the spill file).
 *
 * Why: on a virtual machine that gives free memory back to its host
 * (virtio-balloon free page reporting), every page the page cache takes
 * anew costs a fault in the host. Measured on this project's machines
 * after heavy writing, 308 MiB written through the page cache took
 * 0.64-0.83 s and through `O_DIRECT` 0.15-0.35 s. On a quiet machine the
 * page cache is the cheaper one (0.07-0.09 s against 0.17-0.22 s), and on
 * slow flash it is by far: callers measure both and keep the cheaper
 * (`_cost_chooser.ts`).
 *
 * Deno has no `O_DIRECT`, so this goes through the C library with Deno's
 * FFI. The descriptor is a second one on a file the caller created and
 * holds open: opened with `O_NOFOLLOW` and checked to be the same inode.
 * Anything that does not work (no FFI, a file system without `O_DIRECT`
 * such as ramfs, another architecture) gives `undefined`: the caller
 * stays with the page cache.
 *
 * @module
 */

import { openLibc } from "../util/mod.ts";

/**
 * The `O_DIRECT` bit of open flags on this machine's architecture (as
 * `/proc/PID/fdinfo` shows them); undefined where it is not known here.
 *
 * @example Usage
 * ```ts
 * import { directFlag } from "./_direct_io.ts";
 * import assert from "node:assert/strict";
 *
 * if (Deno.build.arch === "x86_64") assert.equal(directFlag(), 0o40000);
 * ```
 *
 * @returns The bit.
 */
export function directFlag(): number | undefined {
  return FLAGS[Deno.build.arch]?.direct;
}

/** Offsets, lengths and buffer addresses of direct I/O are multiples of this. */
export const DIRECT_ALIGN = 4096;

/**
 * The ways a `_cost_chooser.ts` chooser picks between, for a file written
 * through the page cache or past it.
 */
export const PAGE_CACHE = 0;
/** See {@linkcode PAGE_CACHE}. */
export const DIRECT = 1;

/**
 * `offset` rounded up to a multiple of {@linkcode DIRECT_ALIGN}.
 *
 * @example Usage
 * ```ts
 * import { alignUp } from "./_direct_io.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(alignUp(1), 4096);
 * assert.equal(alignUp(8192), 8192);
 * ```
 *
 * @param offset A byte offset or length.
 * @returns The next aligned one, or itself.
 */
export function alignUp(offset: number): number {
  return Math.ceil(offset / DIRECT_ALIGN) * DIRECT_ALIGN;
}

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  pwrite: {
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
  },
  pwriteAsync: {
    name: "pwrite",
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  pread: {
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
  },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Open flags that differ by architecture (Linux's generic ones, and arm64's). */
const FLAGS: Record<string, { direct: number; noFollow: number }> = {
  x86_64: { direct: 0o40000, noFollow: 0o400000 },
  aarch64: { direct: 0o200000, noFollow: 0o100000 },
};
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;

let libc: Libc | null | undefined;

/** The C library, loaded once and kept; null where it cannot be. */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = Deno.build.os === "linux" && FLAGS[Deno.build.arch] !== undefined
    ? openLibc(SYMBOLS)?.symbols ?? null
    : null;
  return libc;
}

/** A descriptor opened with `O_DIRECT`: every offset, length and buffer aligned. */
export interface DirectFile {
  /**
   * Writes `bytes` at `offset`, in this thread.
   *
   * @returns Whether all of it was written (else the caller writes it
   * through the page cache, which says why it fails, if it does).
   */
  writeAt(bytes: Uint8Array, offset: number): boolean;
  /**
   * Writes `bytes` at `offset` in a thread of Deno's pool; `bytes` must be
   * left untouched until it settles.
   *
   * @returns Whether all of it was written.
   */
  writeAtAsync(bytes: Uint8Array, offset: number): Promise<boolean>;
  /**
   * Allocates the file's blocks from `offset` for `length` bytes (the file
   * grows to their end), so that the file system counts them now, not when
   * a write in flight lands: free space stays true for whoever measures it.
   *
   * @returns Whether they were allocated (false: the disk is full, or the
   * file system cannot).
   */
  reserve(offset: number, length: number): boolean;
  /**
   * Reads into `into` from `offset`.
   *
   * @returns The bytes read, fewer at the end of the file; -1 on failure.
   */
  readAt(into: Uint8Array, offset: number): number;
  /** Closes the descriptor; no write may be in flight. */
  close(): void;
}

/**
 * Opens `path` a second time with `O_DIRECT`, when it is still the file
 * `held` is open on (the same device and inode).
 *
 * @example Usage
 * ```ts
 * import { alignedBytes, openDirect } from "./_direct_io.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/f`;
 * using file = Deno.openSync(path, { write: true, createNew: true, read: true });
 * const direct = openDirect(path, file, { read: true });
 * assert.ok(direct !== undefined);
 * const bytes = alignedBytes(8192).fill(7);
 * assert.equal(direct.writeAt(bytes, 0), true);
 * direct.close();
 * assert.deepEqual(Deno.readFileSync(path), new Uint8Array(8192).fill(7));
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The file, created by the caller.
 * @param held The caller's descriptor on it.
 * @param options Whether to read too.
 * @returns The descriptor, or undefined where direct I/O is not to be had.
 */
export function openDirect(
  path: string,
  held: Deno.FsFile,
  options: { read?: boolean } = {},
): DirectFile | undefined {
  const c = loadLibc();
  const flags = FLAGS[Deno.build.arch];
  if (c === null || flags === undefined) return undefined;
  let same: Deno.FileInfo;
  try {
    same = held.statSync();
  } catch {
    return undefined;
  }
  const fd = c.open(
    new TextEncoder().encode(`${path}\0`),
    (options.read ? O_RDWR : O_WRONLY) | flags.direct | flags.noFollow |
      O_CLOEXEC,
    0,
  );
  if (fd < 0) return undefined;
  // The file the new descriptor reaches (through /proc: no struct layout,
  // and no fstat symbol, which glibc exports only since 2.33).
  let reached: Deno.FileInfo | undefined;
  try {
    reached = Deno.statSync(`/proc/self/fd/${fd}`);
  } catch {
    reached = undefined;
  }
  if (reached?.dev !== same.dev || reached.ino !== same.ino) {
    c.close(fd);
    return undefined;
  }
  let open = true;
  return {
    writeAt(bytes, offset) {
      return Number(
        c.pwrite(fd, bytes, BigInt(bytes.length), BigInt(offset)),
      ) === bytes.length;
    },
    async writeAtAsync(bytes, offset) {
      const done = await c.pwriteAsync(
        fd,
        bytes,
        BigInt(bytes.length),
        BigInt(offset),
      );
      return Number(done) === bytes.length;
    },
    reserve(offset, length) {
      return c.fallocate(fd, 0, BigInt(offset), BigInt(length)) === 0;
    },
    readAt(into, offset) {
      return Number(c.pread(fd, into, BigInt(into.length), BigInt(offset)));
    },
    close() {
      if (!open) return;
      open = false;
      c.close(fd);
    },
  };
}

/**
 * `size` bytes whose address is a multiple of {@linkcode DIRECT_ALIGN}.
 *
 * @example Usage
 * ```ts
 * import { alignedBytes, DIRECT_ALIGN } from "./_direct_io.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = alignedBytes(3 * DIRECT_ALIGN);
 * assert.equal(bytes.length, 3 * DIRECT_ALIGN);
 * const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)!);
 * assert.equal(BigInt(address) % BigInt(DIRECT_ALIGN), 0n);
 * ```
 *
 * Its pages are touched here: the first direct writes through it are timed
 * to choose between direct writes and the page cache, and would otherwise
 * be charged the page faults (measured after heavy writing: the archive's
 * first window of direct writes cost 1.4-2.0 ms a MiB, its later ones
 * 0.6-0.9).
 *
 * @param size The bytes wanted.
 * @returns A view of a buffer a page larger, at its first aligned address,
 * zeroed.
 */
export function alignedBytes(size: number): Uint8Array {
  const raw = new Uint8Array(size + DIRECT_ALIGN).fill(0);
  const pointer = Deno.UnsafePointer.of(raw);
  const address = pointer === null
    ? 0
    : Number(BigInt(Deno.UnsafePointer.value(pointer)) % BigInt(DIRECT_ALIGN));
  const skip = (DIRECT_ALIGN - address) % DIRECT_ALIGN;
  return raw.subarray(skip, skip + size);
}
