/**
 * Splitting a command line into words as a POSIX shell would, without
 * running one: quotes and backslashes, no expansion of any kind.
 *
 * @module
 */

/** A command line a shell would not accept: an open quote, a final backslash. */
export class WordsError extends Error {
  /** Creates the error; the message says what was expected and found. */
  constructor(message: string) {
    super(message);
    this.name = "WordsError";
  }
}

/**
 * Splits `text` into words: blanks separate them; `'...'` keeps its text
 * as it is; `"..."` keeps it but for `\\`, `\"`, `\$` and `` \` ``; a
 * backslash outside quotes keeps the next character. No variable, glob or
 * command is expanded.
 *
 * @example Usage
 * ```ts
 * import { splitWords } from "./words.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   splitWords(`-batch -ex 'thread apply all bt' -ex "p \\"x\\"" a\\ b`),
 *   ["-batch", "-ex", "thread apply all bt", "-ex", 'p "x"', "a b"],
 * );
 * assert.deepEqual(splitWords("  "), []);
 * assert.throws(() => splitWords("-ex 'bt"), /a closing '/);
 * ```
 *
 * @param text The command line.
 * @returns Its words.
 * @throws {WordsError} For an unclosed quote or a final backslash.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n") {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    word ??= "";
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) {
        throw new WordsError(
          `Cannot split '${text}': expected a closing ' for the one at ${i}`,
        );
      }
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\" && '\\"$`'.includes(text[j + 1] ?? "")) j++;
        word += text[j];
      }
      if (j >= text.length) {
        throw new WordsError(
          `Cannot split '${text}': expected a closing " for the one at ${i}`,
        );
      }
      i = j;
    } else if (c === "\\") {
      if (i + 1 >= text.length) {
        throw new WordsError(
          `Cannot split '${text}': expected a character after the final backslash`,
        );
      }
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
