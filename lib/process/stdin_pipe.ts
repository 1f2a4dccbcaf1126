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
 * - {@linkcode stdinReadable}: standard input as a byte stream whose reads
 *   take what the pipe holds in this thread, without a trip through
 *   Deno's thread pool, and wait asynchronously only on an empty pipe. The
 *   pipe is made non-blocking for that (`O_NONBLOCK`, given back before the
 *   pipe is let go), not asked how much it holds before each read: the
 *   kernel counts that by walking the pipe's buffers with the pipe locked,
 *   up to 4096 of them in a full pipe of 16 MiB, and the writer waits on
 *   that lock. Measured through the kernel on the mixed 1 GiB core after
 *   heavy writing (perf), those checks and the lock they held took 0.2 s of
 *   the reading thread's 1.4 s.
 *
 * Where libc cannot be loaded, they do nothing: reads stay small, the
 * process is released at exit, as before, and no pressure is seen.
 *
 * @module
 */

import { openLibc, withLibc } from "../util/mod.ts";

const O_RDONLY = 0;
/** Most milliseconds of reads in a row without a turn of the event loop. */
const TURN_MS = 4;
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
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  poll: {
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const;
const F_GETFL = 3;
const F_SETFL = 4;
/** The same bit on x86-64 and aarch64. */
const O_NONBLOCK = 0o4000;
const POLLIN = 1;

/**
 * Asks the kernel for a larger pipe on standard input. A process with
 * CAP_SYS_RESOURCE (the kernel's helper has it) may have any size; any
 * other, root in a container included, gets at most
 * `/proc/sys/fs/pipe-max-size` (1 MiB by default), which it is given when
 * `bytes` is refused.
 *
 * @example Usage
 * ```ts
 * import { enlargeStdinPipe } from "./stdin_pipe.ts";
 * import assert from "node:assert/strict";
 *
 * // Under `deno test`, standard input is no pipe, or one that may be 1 MiB.
 * const size = enlargeStdinPipe(1 << 20);
 * assert.ok(size === undefined || size === 1 << 20);
 * ```
 *
 * @param bytes The size wanted.
 * @returns The pipe's size now, or undefined when stdin is no pipe.
 */
export function enlargeStdinPipe(bytes: number): number | undefined {
  return withLibc(SYMBOLS, (libc) => {
    let size = libc.fcntl(0, F_SETPIPE_SZ, bytes);
    if (size < 0) {
      let most = NaN;
      try {
        most = Number(Deno.readTextFileSync("/proc/sys/fs/pipe-max-size"));
      } catch {
        // No /proc: the pipe stays as it is.
      }
      if (most < bytes) size = libc.fcntl(0, F_SETPIPE_SZ, most);
    }
    return size < 0 ? undefined : size;
  });
}

/**
 * Replaces file descriptor 0 by `/dev/null`: the pipe is let go.
 *
 * @returns True when it was.
 */
export function releaseStdin(): boolean {
  return withLibc(SYMBOLS, (libc) => {
    const fd = libc.open(new TextEncoder().encode("/dev/null\0"), O_RDONLY);
    if (fd < 0) return false;
    const done = libc.dup2(fd, 0) === 0;
    if (fd !== 0) libc.close(fd);
    return done;
  }) ?? false;
}

/** A check of the pipe on standard input, holding libc until disposed. */
export interface StdinPressure extends Disposable {
  /** True when the pipe is at least three quarters full. */
  pressed(): boolean;
  /** Bytes in the pipe now (`FIONREAD`); 0 when it cannot be told. */
  available(): number;
  /**
   * Reads what the pipe holds into `into`, without waiting.
   *
   * @returns The bytes read, null at the end of the input, or undefined
   * when the pipe is empty now (or the read failed: {@linkcode
   * StdinPressure.read} then says why).
   */
  tryRead(into: Uint8Array): number | null | undefined;
  /**
   * Reads into `into` once the pipe holds bytes, waiting outside this
   * thread.
   *
   * @returns The bytes read, or null at the end of the input.
   */
  read(into: Uint8Array): Promise<number | null>;
  /**
   * Makes the pipe blocking again, as it was, while descriptor 0 is still
   * that pipe; reads through this check must be over. The flag belongs to
   * the pipe's open file, which other processes may share (a pipe or FIFO
   * read by a script after the capture), so it is given back before the
   * pipe is let go ({@linkcode releaseStdin}) and before a forced exit, as
   * well as on dispose.
   */
  restore(): void;
}

/**
 * A check of whether the pipe on standard input is at least three quarters
 * full: the writer (the kernel, writing a core) is waiting for the reader.
 * libc stays loaded for the checks, one per block of the core, and for
 * reads that do not wait: the pipe is non-blocking until the check is
 * disposed (where it cannot be made so, each such read asks first whether
 * the pipe holds bytes).
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
  const library = openLibc(SYMBOLS);
  if (library === undefined) return undefined;
  const size = library.symbols.fcntl(0, F_GETPIPE_SZ, 0);
  if (size <= 0) {
    library.close();
    return undefined;
  }
  const c = library.symbols;
  const count = new Int32Array(1);
  const bytes = new Uint8Array(count.buffer);
  const available = () =>
    c.ioctl(0, BigInt(FIONREAD), bytes) === 0 ? count[0]! : 0;
  const flags = c.fcntl(0, F_GETFL, 0);
  const made = flags >= 0 && (flags & O_NONBLOCK) === 0 &&
    c.fcntl(0, F_SETFL, flags | O_NONBLOCK) === 0;
  const nonBlocking = made || (flags >= 0 && (flags & O_NONBLOCK) !== 0);
  const waitFor = new Int32Array([0, POLLIN]);
  let open = true;
  return {
    pressed() {
      return available() >= size * 0.75;
    },
    available,
    tryRead: nonBlocking
      ? (into) => {
        const got = Number(c.read(0, into, BigInt(into.length)));
        return got > 0 ? got : got === 0 ? null : undefined;
      }
      : (into) => available() > 0 ? Deno.stdin.readSync(into) : undefined,
    read: nonBlocking
      ? async (into) => {
        for (;;) {
          // Ready: bytes, the end, or an error, which the read then throws
          // (poll writes only `revents`, the high half of the second word).
          await c.poll(waitFor, 1n, -1);
          try {
            return Deno.stdin.readSync(into);
          } catch (error) {
            if (!(error instanceof Deno.errors.WouldBlock)) throw error;
          }
        }
      }
      : (into) => Deno.stdin.read(into),
    restore() {
      // Only while descriptor 0 is still that pipe (/dev/null once the
      // capture let it go).
      const now = made && open ? c.fcntl(0, F_GETFL, 0) : -1;
      if (now >= 0 && (now & O_NONBLOCK) !== 0) c.fcntl(0, F_SETFL, flags);
    },
    [Symbol.dispose]() {
      this.restore();
      open = false;
      library.close();
    },
  };
}

/**
 * Standard input as a byte stream. With `pipe`, a read takes what the pipe
 * holds at once in this thread ({@linkcode StdinPressure.tryRead}); only a
 * read of an empty pipe waits asynchronously. The kernel writes a core as
 * fast as the pipe is drained: through the kernel on the mixed 1 GiB core,
 * the asynchronous reads alone
 * kept this thread idle two thirds of the time, waiting for their
 * completions, while the kernel waited on the full pipe.
 *
 * @example Usage
 * ```ts
 * import { stdinReadable } from "./stdin_pipe.ts";
 * import assert from "node:assert/strict";
 *
 * // Without a pipe to look at, it is Deno's own stream.
 * assert.equal(stdinReadable(undefined), Deno.stdin.readable);
 * ```
 *
 * @param pipe The check of the pipe, from {@linkcode stdinPressure}.
 * @returns The stream; BYOB reads fill the caller's buffer.
 */
export function stdinReadable(
  pipe: StdinPressure | undefined,
): ReadableStream<Uint8Array> {
  if (pipe === undefined) return Deno.stdin.readable;
  // Reads in this thread run on promises alone: once TURN_MS went by
  // without a turn of the event loop, the next read waits for one, so that
  // the compressor's workers are answered (a pipe that never runs dry, as
  // from `cat`, left them idle until the end; a turn after every read cost
  // 0.2 s through the kernel on the mixed core).
  const turn = new MessageChannel();
  let next: (() => void) | undefined;
  let turned = performance.now();
  turn.port1.onmessage = () => {
    turned = performance.now();
    next?.();
  };
  const close = () => {
    turn.port1.close();
    turn.port2.close();
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 1 << 16,
    pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      const into = new Uint8Array(
        view.buffer,
        view.byteOffset,
        view.byteLength,
      );
      const answer = (read: number | null) => {
        if (read === null) {
          close();
          controller.close();
          request.respond(0);
        } else request.respond(read);
      };
      let read: number | null | undefined;
      try {
        read = pipe.tryRead(into);
      } catch (error) {
        close();
        throw error;
      }
      if (read !== undefined) {
        answer(read);
        if (performance.now() - turned < TURN_MS) return;
        return new Promise<void>((resolve) => {
          next = resolve;
          turn.port2.postMessage(undefined);
        });
      }
      return pipe.read(into).then((read) => {
        turned = performance.now();
        answer(read);
      }, (error) => {
        close();
        throw error;
      });
    },
    cancel: close,
  });
}
