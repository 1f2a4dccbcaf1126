/**
 * Crash signatures: a stable id per bug, from the crashing thread's top
 * frames after those that only report the crash (`raise`, `abort`, assert
 * helpers...), each as module and function, or module and offset when the
 * module has no names. Offsets are from the module's start, so the same bug
 * gets the same id at any load address (ASLR).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Backtrace, ThreadTrace } from "./backtrace.ts";

/**
 * Functions that only report a crash, skipped (with everything above them)
 * before a signature's frames are taken; `*` matches any run of characters.
 */
export const SIGNATURE_SKIP: readonly string[] = [
  "raise",
  "gsignal",
  "abort",
  "__pthread_kill*",
  "pthread_kill*",
  "__GI_*",
  "__assert_fail*",
  "__assert_perror_fail",
  "__libc_message*",
  "__fortify_fail*",
  "__chk_fail",
  "__stack_chk_fail*",
  "malloc_printerr",
  "__malloc_assert",
  "_ZSt9terminatev",
  "_ZN10__cxxabiv111__terminateEPFvvE",
  "_ZN9__gnu_cxx27__verbose_terminate_handlerEv",
  "__cxa_throw",
  "__cxa_rethrow",
  "__cxa_call_terminate",
];

/** A crash signature. */
export interface CrashSignature {
  /** 16 hex digits: the first of the SHA-256 of the frames. */
  id: string;
  /** The frames it was made from: `prog!crash_level3`, `libfoo.so+0x1234`. */
  frames: string[];
}

/** Options for {@linkcode crashSignature}. */
export interface CrashSignatureOptions {
  /**
   * More functions to skip, besides {@linkcode SIGNATURE_SKIP}.
   *
   * @default {[]}
   */
  skip?: readonly string[];
  /**
   * Frames taken.
   *
   * @default {3}
   */
  depth?: number;
}

/** Frames looked at from the top for ones to skip. */
const SKIP_WINDOW = 16;

/**
 * The signature of a crash, from its crashing thread's trace.
 *
 * @example The same bug at other load addresses, and another bug
 * ```ts
 * import { crashSignature } from "./signature.ts";
 * import assert from "node:assert/strict";
 *
 * const trace = (base: bigint, top: string) => ({
 *   tid: 1,
 *   crashed: true,
 *   frames: [
 *     { pc: base + 0x8aeecn, trust: "context" as const, module: "/lib/libc.so.6", offset: 0x8aeecn },
 *     { pc: base + 0x3bfb2n, trust: "cfi" as const, module: "/lib/libc.so.6", offset: 0x3bfb2n, function: "raise" },
 *     { pc: base + 0x26472n, trust: "cfi" as const, module: "/lib/libc.so.6", offset: 0x26472n, function: "abort" },
 *     { pc: 0x1055n, trust: "cfi" as const, module: "/usr/bin/prog", offset: 0x55n, function: top },
 *     { pc: 0x1076n, trust: "cfi" as const, module: "/usr/bin/prog", offset: 0x76n, function: "main" },
 *   ],
 * });
 * const one = crashSignature(trace(0x7f0000000000n, "check_input"))!;
 * assert.deepEqual(one.frames, ["prog!check_input", "prog!main"]);
 * assert.equal(crashSignature(trace(0x7f1234560000n, "check_input"))!.id, one.id);
 * assert.notEqual(crashSignature(trace(0x7f0000000000n, "parse_header"))!.id, one.id);
 * ```
 *
 * @param thread The crashing thread's trace.
 * @param options More functions to skip; how many frames to take.
 * @returns The signature, or undefined for a trace without frames.
 */
export function crashSignature(
  thread: ThreadTrace,
  options: CrashSignatureOptions = {},
): CrashSignature | undefined {
  const { depth = 3 } = options;
  const patterns = [...SIGNATURE_SKIP, ...(options.skip ?? [])].map(glob);
  const { frames } = thread;
  let start = 0;
  for (let i = 0; i < Math.min(frames.length, SKIP_WINDOW); i++) {
    const name = frames[i]!.function;
    if (name !== undefined && patterns.some((p) => p.test(name))) start = i + 1;
  }
  // A trace that is all reporting: keep its top frames after all.
  if (start >= frames.length) start = 0;
  const taken = frames.slice(start, start + depth).map((frame) => {
    const module = frame.module === undefined
      ? "?"
      : frame.module.slice(frame.module.lastIndexOf("/") + 1).replace(
        / \(deleted\)$/,
        "",
      );
    if (frame.function !== undefined) return `${module}!${frame.function}`;
    return frame.offset === undefined
      ? module
      : `${module}+0x${frame.offset.toString(16)}`;
  });
  if (taken.length === 0) return undefined;
  const id = createHash("sha256").update(taken.join("\n")).digest("hex")
    .slice(0, 16);
  return { id, frames: taken };
}

/**
 * The signature of a whole trace: its crashing thread's.
 *
 * @example Usage
 * ```ts
 * import { backtraceSignature } from "./signature.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = { pc: 0x1139n, trust: "context" as const, module: "/bin/p", offset: 0x139n, function: "f" };
 * const trace = { threads: [{ tid: 2, crashed: false, frames: [] }, { tid: 1, crashed: true, frames: [frame] }] };
 * assert.deepEqual(backtraceSignature(trace)?.frames, ["p!f"]);
 * assert.equal(backtraceSignature(undefined), undefined);
 * ```
 *
 * @param backtrace The trace, if there is one.
 * @param options More functions to skip; how many frames to take.
 * @returns The signature, or undefined without a crashing thread's frames.
 */
export function backtraceSignature(
  backtrace: Backtrace | undefined,
  options: CrashSignatureOptions = {},
): CrashSignature | undefined {
  const thread = backtrace?.threads.find((t) => t.crashed);
  return thread === undefined ? undefined : crashSignature(thread, options);
}

function glob(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll(
    "*",
    ".*",
  );
  return new RegExp(`^${escaped}$`);
}
