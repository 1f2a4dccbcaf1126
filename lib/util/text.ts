/**
 * Private text helpers for messages.
 *
 * @module
 */

/**
 * Renders an untrusted value for a one-line message: control characters are
 * escaped as `\xNN` and long values are cut.
 *
 * @example Usage
 * ```ts
 * import { printable } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(printable("evil\nname\x1b[2J"), "evil\\x0aname\\x1b[2J");
 * assert.equal(printable("a".repeat(100), 10), "aaaaaaaaaa...");
 * ```
 *
 * @param value The untrusted text.
 * @param max Most UTF-16 units kept, cut between characters.
 * @returns The text, safe for one line.
 */
export function printable(value: string, max = 80): string {
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0)!;
    const piece = code < 0x20 || code === 0x7f
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : char;
    // Whole characters and whole escapes only: never half a pair.
    if (out.length + piece.length > max) return `${out}...`;
    out += piece;
  }
  return out;
}

/**
 * The message of any thrown value, first line only, without a final period.
 *
 * @example Usage
 * ```ts
 * import { errorText } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(errorText(new Error("Disk full.\n    at write")), "Disk full");
 * assert.equal(errorText("a string thrown"), "a string thrown");
 * ```
 *
 * @param error A thrown value.
 * @returns Its message's first line.
 */
export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.replace(/\.$/, "");
}
