/**
 * Calls into the C library where Deno has no call of its own (pipe sizes,
 * `FIONREAD`, thread priorities), through Deno's FFI.
 *
 * @module
 */

/**
 * Runs `use` with libc's `symbols`, loaded for the call and closed after.
 *
 * @example Usage
 * ```ts
 * import { withLibc } from "./libc.ts";
 * import assert from "node:assert/strict";
 *
 * const pid = withLibc(
 *   { getpid: { parameters: [], result: "i32" } } as const,
 *   (libc) => libc.getpid(),
 * );
 * assert.equal(pid, Deno.pid);
 * ```
 *
 * @param symbols The functions wanted, as `Deno.dlopen` takes them.
 * @param use What to do with them.
 * @returns What `use` returns, or undefined where libc cannot be loaded
 * (no FFI permission, no glibc).
 */
export function withLibc<S extends Deno.ForeignLibraryInterface, T>(
  symbols: S,
  use: (libc: Deno.DynamicLibrary<S>["symbols"]) => T,
): T | undefined {
  const library = openLibc(symbols);
  if (library === undefined) return undefined;
  try {
    return use(library.symbols);
  } finally {
    library.close();
  }
}

/**
 * libc with `symbols`, loaded for callers that keep it (calls in a loop,
 * or from Deno's thread pool); they close it when done.
 *
 * @example Usage
 * ```ts
 * import { openLibc } from "./libc.ts";
 * import assert from "node:assert/strict";
 *
 * const libc = openLibc({ getpid: { parameters: [], result: "i32" } } as const);
 * assert.ok(libc !== undefined);
 * assert.equal(libc.symbols.getpid(), Deno.pid);
 * assert.equal(libc.symbols.getpid(), Deno.pid);
 * libc.close();
 * ```
 *
 * @param symbols The functions wanted, as `Deno.dlopen` takes them.
 * @returns The library, or undefined where libc cannot be loaded (no FFI
 * permission, no glibc, a symbol it lacks).
 */
export function openLibc<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
): Deno.DynamicLibrary<S> | undefined {
  try {
    return Deno.dlopen("libc.so.6", symbols);
  } catch {
    return undefined;
  }
}
