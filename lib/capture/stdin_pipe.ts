/**
 * Private: the core's pipe on standard input, handled through libc where
 * Deno has no call for it.
 *
 * - {@linkcode enlargeStdinPipe}: the kernel writes the core into a pipe of
 *   64 KiB, so every read returns at most that and the writer sleeps as
 *   often; a larger pipe (`F_SETPIPE_SZ`) halves the cost of draining it.
 * - {@linkcode releaseStdin}: under `core_pipe_limit` the kernel waits until
 *   the helper has closed its end of the pipe (its count of readers drops),
 *   not for the helper's exit. `Deno.stdin.close()` drops Deno's handle but
 *   leaves file descriptor 0 open (measured: the process stayed frozen until
 *   the helper exited), so `/dev/null` is duplicated onto 0 instead, which
 *   closes the pipe and keeps 0 a valid descriptor.
 *
 * - {@linkcode stdinPressure}: whether the pipe is nearly full, that is,
 *   whether the kernel waits on the helper (`FIONREAD`): a capture then
 *   deflates at a faster level, so that the crashed process is frozen less.
 *
 * Where libc cannot be loaded, they do nothing: reads stay small, the
 * process is released at exit, as before, and no pressure is seen.
 *
 * @module
 */

const O_RDONLY = 0;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
/** `FIONREAD` on x86-64 and aarch64, the architectures Deno runs on. */
const FIONREAD = 0x541b;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
} as const;

/** Runs `use` with libc, or returns `fallback` where it cannot be loaded. */
function withLibc<T>(
  use: (libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"]) => T,
  fallback: T,
): T {
  let library: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    library = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch {
    return fallback;
  }
  try {
    return use(library.symbols);
  } finally {
    library.close();
  }
}

/**
 * Asks the kernel for a larger pipe on standard input (it gives at most
 * `/proc/sys/fs/pipe-max-size`, 1 MiB by default, to root).
 *
 * @param bytes The size wanted.
 * @returns The pipe's size now, or undefined when stdin is no pipe.
 */
export function enlargeStdinPipe(bytes: number): number | undefined {
  return withLibc((libc) => {
    const size = libc.fcntl(0, F_SETPIPE_SZ, bytes);
    return size < 0 ? undefined : size;
  }, undefined);
}

/**
 * Replaces file descriptor 0 by `/dev/null`: the pipe is let go.
 *
 * @returns True when it was.
 */
export function releaseStdin(): boolean {
  return withLibc((libc) => {
    const fd = libc.open(new TextEncoder().encode("/dev/null\0"), O_RDONLY);
    if (fd < 0) return false;
    const done = libc.dup2(fd, 0) === 0;
    if (fd !== 0) libc.close(fd);
    return done;
  }, false);
}

/** A check of the pipe on standard input, holding libc until disposed. */
export interface StdinPressure extends Disposable {
  /** True when the pipe is at least three quarters full. */
  pressed(): boolean;
}

/**
 * A check of whether the pipe on standard input is at least three quarters
 * full: the writer (the kernel, writing a core) is waiting for the reader.
 * libc stays loaded for the checks, one per block of the core.
 *
 * @example Usage
 * ```ts
 * import { stdinPressure } from "./stdin_pipe.ts";
 * import assert from "node:assert/strict";
 *
 * // Under `deno test`, standard input is no pipe that a core fills.
 * using pressure = stdinPressure();
 * assert.equal(pressure?.pressed() ?? false, false);
 * ```
 *
 * @returns The check, or undefined when stdin is no pipe or libc cannot be
 * loaded.
 */
export function stdinPressure(): StdinPressure | undefined {
  let library: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    library = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch {
    return undefined;
  }
  const size = library.symbols.fcntl(0, F_GETPIPE_SZ, 0);
  if (size <= 0) {
    library.close();
    return undefined;
  }
  const count = new Int32Array(1);
  const bytes = new Uint8Array(count.buffer);
  return {
    pressed() {
      if (library.symbols.ioctl(0, BigInt(FIONREAD), bytes) !== 0) {
        return false;
      }
      return count[0]! >= size * 0.75;
    },
    [Symbol.dispose]() {
      library.close();
    },
  };
}
