/**
 * The facts the kernel passes about a crashed process through
 * `core_pattern` specifiers.
 *
 * @module
 */

/** Where the kernel facts came from: `core_pattern` specifiers, all optional. */
export interface KernelFacts {
  /** `%P`: pid in the initial pid namespace. */
  pid?: number;
  /** `%u`: real uid of the crashed process. */
  uid?: number;
  /** `%g`: real gid of the crashed process. */
  gid?: number;
  /** `%s`: number of the signal that caused the dump. */
  signal?: number;
  /** `%t`: time of the dump, seconds since the epoch. */
  time?: number;
  /** `%E`: path of the executable, with `/` written as `!`. */
  exe?: string;
  /** `%c`: soft RLIMIT_CORE of the crashed process, in bytes (Infinity: none). */
  rlimit?: number;
  /** `%d`: the process's dumpable mode (0, 1 or 2). */
  dumpable?: number;
  /** `%h`: hostname (the UTS namespace's nodename). */
  hostname?: string;
}

/**
 * The executable's path from `%E`, which the kernel writes with `!` for
 * each `/`.
 *
 * @example Usage
 * ```ts
 * import { exePath } from "./kernel_facts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(exePath({ exe: "!usr!bin!app" }), "/usr/bin/app");
 * assert.equal(exePath({}), undefined);
 * ```
 *
 * @param facts The kernel's facts.
 * @returns The path, or undefined without `%E`.
 */
export function exePath(facts: KernelFacts): string | undefined {
  return facts.exe?.replaceAll("!", "/");
}
