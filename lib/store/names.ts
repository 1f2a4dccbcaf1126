/**
 * Names of stored cores: `Core_<YYYYMMDD_HHMMSS>[_<argument>]`, as the
 * original gzCoredump named them, made safe for any argument the kernel or a
 * hostile program name can produce.
 *
 * @module
 */

/** Longest name part taken from an argument, in UTF-8 bytes. */
export const MAX_NAME_PART_BYTES = 64;

/**
 * Makes an untrusted string safe as part of a file name: letters, digits,
 * `.`, `+`, `-` and `_` are kept (letters and digits of any script); every
 * other character, including `/`, `!`, spaces, control bytes and the
 * replacement character of invalid UTF-8, becomes `_`. Runs of `_` and of
 * `.` collapse to one (so `..` cannot survive), leading and trailing `.`,
 * `-` and `_` are removed, and the result is cut to
 * {@linkcode MAX_NAME_PART_BYTES} bytes on a character boundary.
 *
 * @param value The untrusted string (`-a %e`, a hostname ...).
 * @returns The safe name part; empty when nothing usable is left.
 *
 * @example Usage
 * ```ts
 * import { sanitizeNamePart } from "./names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sanitizeNamePart("../../etc/passwd"), "etc_passwd");
 * assert.equal(sanitizeNamePart("my prog"), "my_prog");
 * assert.equal(sanitizeNamePart("café-1.2"), "café-1.2");
 * assert.equal(sanitizeNamePart("..."), "");
 * ```
 */
export function sanitizeNamePart(value: string): string {
  let out = "";
  for (const char of value) {
    out += /^[\p{L}\p{N}.+_-]$/u.test(char) ? char : "_";
  }
  out = out.replace(/_+/g, "_").replace(/\.+/g, ".")
    .replace(/^[._-]+/, "").replace(/[._-]+$/, "");
  const encoder = new TextEncoder();
  if (encoder.encode(out).length <= MAX_NAME_PART_BYTES) return out;
  let cut = "";
  let bytes = 0;
  for (const char of out) {
    bytes += encoder.encode(char).length;
    if (bytes > MAX_NAME_PART_BYTES) break;
    cut += char;
  }
  return cut.replace(/[._-]+$/, "");
}

/**
 * Formats a time as `YYYYMMDD_HHMMSS` in UTC. UTC because the kernel starts
 * the helper with no `TZ`, and names must sort the same on every host.
 *
 * @param time The time.
 * @returns The stamp.
 *
 * @example Usage
 * ```ts
 * import { timeStamp } from "./names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   timeStamp(new Date(Date.UTC(2026, 10, 26, 9, 5, 7))),
 *   "20261126_090507",
 * );
 * ```
 */
export function timeStamp(time: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${time.getUTCFullYear()}${two(time.getUTCMonth() + 1)}${
    two(time.getUTCDate())
  }_${two(time.getUTCHours())}${two(time.getUTCMinutes())}${
    two(time.getUTCSeconds())
  }`;
}

/**
 * The base name of a stored core, without extension:
 * `Core_<YYYYMMDD_HHMMSS>` plus `_<argument>` when the sanitised argument is
 * not empty.
 *
 * @param time The time of the crash.
 * @param argument The untrusted `-a` value, if any.
 * @returns The base name.
 *
 * @example Usage
 * ```ts
 * import { coreBaseName } from "./names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(coreBaseName(new Date(0), "a.out"), "Core_19700101_000000_a.out");
 * assert.equal(coreBaseName(new Date(0)), "Core_19700101_000000");
 * // Nothing usable in the argument: no suffix.
 * assert.equal(coreBaseName(new Date(0), "/"), "Core_19700101_000000");
 * ```
 */
export function coreBaseName(time: Date, argument?: string): string {
  const part = argument === undefined ? "" : sanitizeNamePart(argument);
  return `Core_${timeStamp(time)}${part === "" ? "" : `_${part}`}`;
}
