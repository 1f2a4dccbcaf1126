/**
 * The configuration file (`/etc/gzcoredump.conf`): capture options that do
 * not fit in core_pattern's 127 bytes, one `name = value` per line, named as
 * the long options (`max-use = 1G`, `rate = 5/1h`, `ignore-rlimit = yes`).
 * `#` starts a comment. Options on the command line win.
 *
 * @module
 */

import { printable } from "../util/mod.ts";

/** Largest configuration file read. */
const MAX_CONFIG = 64 << 10;

/** Options from a configuration file, as command-line arguments. */
export interface ConfigArgs {
  /** The options, as `--name value` arguments. */
  args: string[];
  /** Lines that were not understood, and why. */
  warnings: string[];
}

/**
 * Reads a configuration file into arguments for the capture parser. A
 * missing file is no error unless `required`; a malformed line is a warning.
 *
 * @param path The file.
 * @param options Whether the file must exist (it was named by `--config`).
 * @returns The arguments, and what was wrong.
 *
 * @example Usage
 * ```ts
 * import { readConfigArgs } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "# limits\nmax-count = 7\n");
 * const { args, warnings } = await readConfigArgs(path);
 * assert.deepEqual(args, ["--max-count=7"]);
 * assert.deepEqual(warnings, []);
 * await Deno.remove(path);
 * ```
 */
export async function readConfigArgs(
  path: string,
  options: { required?: boolean } = {},
): Promise<ConfigArgs> {
  const warnings: string[] = [];
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile || info.size > MAX_CONFIG) {
      return {
        args: [],
        warnings: [
          `ignored config '${path}': expected a regular file of at most ${MAX_CONFIG} bytes`,
        ],
      };
    }
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !options.required) {
      return { args: [], warnings };
    }
    return { args: [], warnings: [`ignored config '${path}': cannot read it`] };
  }
  const args: string[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const match = /^([a-z][a-z-]*)\s*=\s*(.*)$/.exec(line);
    if (match === null) {
      warnings.push(
        `ignored line ${index + 1} of '${path}': '${
          printable(line)
        }', expected name = value`,
      );
      continue;
    }
    const [, name, value] = match;
    if (/^(yes|true|on)$/i.test(value!)) args.push(`--${name}`);
    else if (!/^(no|false|off)$/i.test(value!)) args.push(`--${name}=${value}`);
  }
  return { args, warnings };
}
