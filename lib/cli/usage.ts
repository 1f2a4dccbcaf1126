/**
 * The help text and the README's option tables, made from the flag tables
 * (`flags.ts`).
 *
 * @module
 */

import { DEFAULT_DIRECTORY } from "../store/mod.ts";
import { type Flag, FLAGS, SUBCOMMANDS, subcommandUsage } from "./flags.ts";

/** Where help's descriptions start, after a two-space indent. */
const OPTION_COLUMN = 20;
const SUBCOMMAND_COLUMN = 44;

/** A flag as help and the README name it: `-p, --path DIR`. */
function label(flag: Flag, options: { indent: boolean }): string {
  if (flag.helpOnly) return `--${flag.value ? ` ${flag.value}` : ""}`;
  const long = `--${flag.name}${flag.value ? ` ${flag.value}` : ""}`;
  if (flag.short !== undefined) return `-${flag.short}, ${long}`;
  return options.indent ? `    ${long}` : long;
}

/** A row of help: the label padded to `column`, or followed by 3 spaces. */
function row(text: string, help: string | undefined, column: number): string {
  if (help === undefined) return `  ${text}`;
  const [first, ...rest] = help.split("\n");
  const head = text.length <= column - 2 ? text.padEnd(column) : `${text}   `;
  return [
    `  ${head}${first}`,
    ...rest.map((line) => `${" ".repeat(column + 2)}${line}`),
  ].join("\n");
}

/** The flags shown on one row with `flag` (`--after` with `--before`). */
function rowOf(flag: Flag): Flag[] {
  return [flag, ...FLAGS.filter((f) => f.rowWith === flag.name)];
}

/**
 * The `--help` text.
 *
 * @example Every flag of the parser is in it
 * ```ts
 * import { usage } from "./usage.ts";
 * import { FLAGS } from "./flags.ts";
 * import assert from "node:assert/strict";
 *
 * const text = usage("1.0.0");
 * for (const flag of FLAGS.filter((f) => !f.helpOnly)) {
 *   assert.ok(text.includes(`--${flag.name}`), flag.name);
 * }
 * ```
 *
 * @param version The tool's version.
 * @returns The text, without a final newline.
 */
export function usage(version: string): string {
  const lines = [
    `gzcoredump version: ${version}`,
    "Usage:",
    "  gzcoredump -c [-p path] [-a argument] [kernel facts] [store options] [-- NAME]   (from core_pattern)",
    "  gzcoredump -c -f inputfile [-o outputfile]",
    "  gzcoredump -d -f inputfile [-o outputfile]",
    ...SUBCOMMANDS.map((s) =>
      row(
        `gzcoredump ${s.name} ${subcommandUsage(s)}`,
        s.summary,
        SUBCOMMAND_COLUMN,
      )
    ),
    "  (ID: a stored core's file name, or a program name meaning its newest core)",
    "Options:",
    ...FLAGS.filter((f) => f.group === undefined).map((f) =>
      row(label(f, { indent: true }), f.help, OPTION_COLUMN)
    ),
    "Kernel facts, for core_pattern (all optional):",
  ];
  const facts = FLAGS.filter((f) => f.group === "fact").map((f) =>
    `-${f.short}, --${f.name} ${f.specifier}`
  );
  lines.push(`  ${facts.slice(0, 5).join("   ")}`);
  lines.push(`  ${facts.slice(5).join("   ")}`);
  lines.push(
    `Store options (also in /etc/gzcoredump.conf as name = value; --config FILE):`,
  );
  for (const flag of FLAGS) {
    if (flag.group !== "store" || flag.rowWith || flag.help === undefined) {
      continue;
    }
    const text = rowOf(flag).map((f) => label(f, { indent: false })).join(" ");
    lines.push(row(text, flag.help, OPTION_COLUMN));
  }
  lines.push(
    "Example core_pattern:",
    `  |/usr/local/bin/gzcoredump -c -p ${DEFAULT_DIRECTORY} -P %P -s %s -t %t -- %e`,
    "Exit status: 0 success, 1 failure (in capture: the core was lost), 2 usage error,",
    "128+N when signal N stopped a capture (its record says so).",
  );
  return lines.join("\n");
}

/** A markdown table cell: pipes escaped. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/** A label in backquotes, each flag of a row on its own: `` `-p`, `--path DIR` ``. */
function docLabel(flag: Flag): string {
  const value = flag.docValue ?? flag.value;
  const long = `\`--${flag.name}${value ? ` ${value}` : ""}\``;
  return flag.short === undefined ? long : `\`-${flag.short}\`, ${long}`;
}

/**
 * The README's tables of options, in markdown: `"main"` (the options of
 * every mode) and `"store"` (the store's options, with their defaults), and
 * `"usage"`, the usage lines of every mode.
 *
 * @example Usage
 * ```ts
 * import { optionTable } from "./usage.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(optionTable("store"), /^\| `--max-use SIZE` +\| 10%/m);
 * ```
 *
 * @param which The table.
 * @returns Its lines, joined.
 */
export function optionTable(which: "main" | "store" | "usage"): string {
  if (which === "usage") {
    return [
      "gzcoredump -c [-p path] [-a argument] [kernel facts] [store options] [-- NAME]",
      "gzcoredump -c -f inputfile [-o outputfile]",
      "gzcoredump -d -f inputfile [-o outputfile]",
      ...SUBCOMMANDS.map((s) => `gzcoredump ${s.name} ${subcommandUsage(s)}`),
    ].join("\n");
  }
  if (which === "main") {
    const rows = FLAGS.filter((f) => f.group === undefined && !f.helpOnly);
    return [
      "| option | meaning |",
      "| --- | --- |",
      ...rows.map((f) =>
        `| ${cell(docLabel(f))} | ${cell(f.doc ?? f.help ?? "")} |`
      ),
    ].join("\n");
  }
  const rows = FLAGS.filter((f) => f.group === "store" && !f.rowWith);
  return [
    "| option (capture) | default | what it does |",
    "| --- | --- | --- |",
    ...rows.map((f) =>
      `| ${cell(rowOf(f).map(docLabel).join(", "))} | ${
        cell(f.default ?? "")
      } | ${cell(f.doc ?? f.help ?? "")} |`
    ),
  ].join("\n");
}

/**
 * A subcommand's own help (`gzcoredump list --help`): its usage line, what
 * it does, and each of its flags.
 *
 * @example Usage
 * ```ts
 * import { subcommandHelp } from "./usage.ts";
 * import assert from "node:assert/strict";
 *
 * const help = subcommandHelp("dump");
 * assert.match(help, /^usage: gzcoredump dump ID \[-o FILE\]/);
 * assert.match(help, /coredumpctl dump/);
 * ```
 *
 * @param name The subcommand.
 * @returns The help text, without a final newline.
 */
export function subcommandHelp(name: string): string {
  const subcommand = SUBCOMMANDS.find((s) => s.name === name);
  if (subcommand === undefined) return `gzcoredump: no subcommand '${name}'`;
  const lines = [`usage: gzcoredump ${name} ${subcommandUsage(subcommand)}`];
  if (subcommand.summary !== undefined) lines.push("", subcommand.summary);
  lines.push("", "options:");
  for (const flag of subcommand.flags) {
    const names = [
      ...(flag.short === undefined ? [] : [`-${flag.short}`]),
      `--${flag.name}`,
    ].join(", ");
    lines.push(`  ${names}${flag.value === undefined ? "" : ` ${flag.value}`}`);
  }
  lines.push("  -h, --help");
  return lines.join("\n");
}
