/**
 * Private text helpers for messages.
 *
 * @module
 */

/**
 * Renders an untrusted value for a one-line message: control characters are
 * escaped as `\xNN` and long values are cut.
 */
export function printable(value: string, max = 80): string {
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0)!;
    out += code < 0x20 || code === 0x7f
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : char;
    if (out.length > max) return `${out.slice(0, max)}...`;
  }
  return out;
}

/** The message of any thrown value, first line only, without a final period. */
export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.replace(/\.$/, "");
}
