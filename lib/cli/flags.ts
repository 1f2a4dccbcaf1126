/**
 * Every flag of the command line, defined once: the strict and the lenient
 * parser (`args.ts`), the help text (`usage.ts`) and the README's option
 * tables (`scripts/docs.ts`, checked by a test) are all made from these
 * tables, so that they cannot disagree.
 *
 * @module
 */

/** Where a flag of the main command line belongs. */
export type FlagGroup = "main" | "fact" | "store";

/** One flag. */
export interface Flag {
  /** The long name, without `--`. */
  readonly name: string;
  /** The one-letter alias, without `-`. */
  readonly short?: string;
  /** What follows the flag in help: `DIR`; none for a boolean flag. */
  readonly value?: string;
  /** What follows it in the README, when not `value`: `gz|zlib`. */
  readonly docValue?: string;
  /** For kernel facts: the `core_pattern` specifier it takes, `%P`. */
  readonly specifier?: string;
  /** Its group on the main command line. */
  readonly group?: FlagGroup;
  /** The `--help` line (continuation lines after `\n`). */
  readonly help?: string;
  /** The README's words, when they say more than `help`. */
  readonly doc?: string;
  /** The README's default (store options). */
  readonly default?: string;
  /**
   * Shown on the row of the flag named here, in help and README
   * (`--after` with `--before`).
   */
  readonly rowWith?: string;
  /** Not a flag of the parser: a line of help only (`-- NAME`). */
  readonly helpOnly?: boolean;
  /** Required where it is used (subcommands: `extract -o FILE`). */
  readonly required?: boolean;
  /** May be given more than once (subcommands: `info --debug-dir DIR`). */
  readonly multiple?: boolean;
  /** Its value may start with a dash: `-A "-batch -ex bt"`. */
  readonly dashValue?: boolean;
}

/** A subcommand: its operand, its flags and its line of help. */
export interface Subcommand {
  /** Its name, the first argument. */
  readonly name: string;
  /** The operand in usage: `PROG`, `[PROGRAM]`. */
  readonly operand: string;
  /** Its flags, in the order usage shows them. */
  readonly flags: readonly Flag[];
  /** What it does, after the usage line (none: the line says it). */
  readonly summary?: string;
}

/** The main command line's flags, in help's order. */
export const FLAGS: readonly Flag[] = [
  { name: "help", short: "h", help: "this help", doc: "usage" },
  {
    name: "version",
    short: "V",
    help: "print the version",
    doc: "the version",
  },
  {
    name: "compress",
    short: "c",
    help: "compress: a core from stdin into the store, or -f into -o",
    doc: "compress: a core from stdin into the store, or `-f IN` into `-o OUT`",
  },
  {
    name: "decompress",
    short: "d",
    help: "decompress a gzip or zlib file (the format is read from the data)",
    doc:
      "decompress; the format (gzip, any number of members, or zlib) is read from the bytes, not the name",
  },
  {
    name: "path",
    short: "p",
    value: "DIR",
    help: "the store directory for cores (default /var/crash)",
    doc: "with `-c` from stdin: the store (default `/var/crash`)",
  },
  {
    name: "argument",
    short: "a",
    value: "ARG",
    help: "with -c, name part of the stored core, e.g. %e",
    doc:
      "with `-c` from stdin: the name part, e.g. `%e`; `-- NAME` last says the same",
  },
  {
    name: "",
    value: "NAME",
    helpOnly: true,
    help: "with -c, the same, last: nothing after '--' is an option",
  },
  {
    name: "file",
    short: "f",
    value: "IN",
    help: "input file; - is stdin",
    doc: "input file; `-` is stdin",
  },
  {
    name: "output",
    short: "o",
    value: "OUT",
    help:
      "output file; - is stdout (default IN.gz, IN.zz, or IN without .gz/.zz)",
    doc:
      "output file; `-` is stdout. Default: `IN.gz` (`IN.zz` for zlib); for `-d`, `IN` without `.gz`, `.zz` or `.z`",
  },
  {
    name: "format",
    short: "F",
    value: "FMT",
    docValue: "gz|zlib",
    help: "with -c, gz (default) or zlib",
    doc: "with `-c`: the container (default gz)",
  },
  {
    name: "level",
    short: "l",
    value: "N",
    docValue: "1..9",
    help:
      "with -c, compression level 1-9 (default 5, and 2 for blocks the kernel\nwaits on in capture; with -j 1, CompressionStream's)",
    doc:
      "with `-c`: the deflate level (default below; in capture, 2 for the blocks read while the kernel waits on a full pipe, unless `-l` is given)",
  },
  {
    name: "jobs",
    short: "j",
    value: "N",
    help:
      "threads (default: one per core; 1: this thread only); -d uses them\nfor files gzcoredump wrote (their header indexes their chunks)",
    doc:
      "worker threads for `-c`, and for `-d` of files gzcoredump wrote (default: one per core; 1: this thread only)",
  },
  {
    name: "force",
    help:
      "replace an existing output file; write compressed data to a terminal",
    doc:
      "replace an existing output file (never done otherwise); write compressed data to a terminal (refused otherwise, as gzip refuses it)",
  },
  { name: "pid", short: "P", value: "PID", specifier: "%P", group: "fact" },
  { name: "uid", short: "u", value: "UID", specifier: "%u", group: "fact" },
  { name: "gid", short: "g", value: "GID", specifier: "%g", group: "fact" },
  {
    name: "signal",
    short: "s",
    value: "N",
    specifier: "%s",
    group: "fact",
  },
  { name: "time", short: "t", value: "T", specifier: "%t", group: "fact" },
  {
    name: "rlimit",
    short: "r",
    value: "BYTES",
    specifier: "%c",
    group: "fact",
  },
  {
    name: "dumpable",
    short: "D",
    value: "N",
    specifier: "%d",
    group: "fact",
  },
  {
    name: "hostname",
    short: "H",
    value: "NAME",
    specifier: "%h",
    group: "fact",
  },
  { name: "exe", short: "E", value: "PATH", specifier: "%E", group: "fact" },
  {
    name: "max-use",
    value: "SIZE",
    group: "store",
    help: "the store's most bytes (default 10% of its file system, at most 4G)",
    doc:
      "the store's most bytes, a ceiling: a core that does not fit after older cores went is cut at it",
    default: "10% of the file system, at most 4 GiB",
  },
  {
    name: "keep-free",
    value: "SIZE",
    group: "store",
    help: "free space to leave (default 15% of the file system, at most 4G)",
    doc:
      "free space to leave; below it only metadata is kept, and a capture that brings free space under it stops, removes its partial file and says why",
    default: "15% of the file system, at most 4 GiB",
  },
  {
    name: "max-count",
    value: "N",
    group: "store",
    help: "most cores kept (default 100)",
    doc: "most cores (archives) kept, those being captured included",
    default: "100",
  },
  {
    name: "max-records",
    value: "N",
    group: "store",
    help: "most records of metadata only kept (default 1000)",
    doc:
      "most records of metadata only kept (dropped, lost, interrupted crashes); they never cost a core its place",
    default: "1000",
  },
  {
    name: "spill-max",
    value: "SIZE",
    group: "store",
    help: "most bytes of core waiting on disk for the compressor (default 1G)",
    doc:
      "most bytes of core that wait on disk (an unlinked file in the store) while the kernel writes faster than they compress, so that the crashed process is released at the pace of the reads; at most half of the space --keep-free leaves; 0 reads at the compressor's pace",
    default: "1 GiB",
  },
  {
    name: "max-size",
    value: "SIZE",
    group: "store",
    help: "most bytes of one core; the rest is cut (default none)",
    doc:
      "most bytes of one core: past it reading stops (the crashed process is released at once), the rest is cut, the sidecar says `truncated` and why",
    default: "none",
  },
  {
    name: "max-age",
    value: "DAYS",
    group: "store",
    help: "remove cores stored longer ago (default 14; also 12h, 30m)",
    doc: "cores stored longer ago go at the next capture",
    default: "14 (also `12h`, `30m`, `90s`)",
  },
  {
    name: "rate",
    value: "N/PERIOD",
    group: "store",
    help: "most cores per program (default 5/1h); beyond, metadata only",
    doc:
      "most stored cores per program (by `%E`, else `/proc/%P/exe`, else the name); beyond, metadata only. Kept in the store (`.gzcoredump-rate.json`), so it survives reboots",
    default: "`5/1h`",
  },
  {
    name: "ignore-rlimit",
    group: "store",
    help: "store cores whatever the process's RLIMIT_CORE says",
    doc:
      "the kernel does not apply RLIMIT_CORE to pipes, so the tool does: `%c` below one page keeps metadata only, otherwise the core is cut at the limit",
    default: "off",
  },
  {
    name: "mode",
    value: "0600|0640",
    group: "store",
    help: "permissions of stored files (0600 always for set-id processes)",
    doc:
      "stored files' permissions; a set-id process (`%d` is 2) always gets `0600`",
    default: "`0600`",
  },
  {
    name: "before",
    value: '"CMD ARGS"',
    group: "store",
    help: "run around a capture (no shell)",
    doc:
      "run around a capture as argv, no shell, empty environment, in a process group of their own killed whole after 30 s (the after hook gets the archive's path); failures are in the record",
    default: "none",
  },
  {
    name: "after",
    value: '"CMD ARGS"',
    group: "store",
    rowWith: "before",
  },
  {
    name: "signature-skip",
    value: "LIST",
    group: "store",
    help:
      "more functions a crash signature skips (comma-separated, * wildcards)",
    doc:
      "more functions a crash signature skips, comma-separated, `*` matching any run of characters; the defaults are `raise`, `gsignal`, `abort`, `__pthread_kill*`, `pthread_kill*`, `__GI_*`, `__assert_fail*`, `__assert_perror_fail`, `__libc_message*`, `__fortify_fail*`, `__chk_fail`, `__stack_chk_fail*`, `malloc_printerr`, `__malloc_assert`, `std::terminate` and the C++ runtime's throw and terminate helpers",
    default: "none",
  },
  {
    name: "symbolize-online",
    value: '"URLS"',
    group: "store",
    help:
      "name the trace from these debuginfod servers, after the process is let go",
    doc:
      "name the trace's frames (functions, file and line) from these debuginfod servers, space-separated, once the crashed process is let go, 10 s in all, cached in `/var/cache/gzcoredump/debuginfod` (as the kernel runs it, with no environment); without it a capture never uses the network",
    default: "off",
  },
  {
    name: "config",
    value: "FILE",
    group: "store",
    doc:
      "the same options as `name = value` lines, since core_pattern holds only 127 bytes; the command line wins",
    default: "`/etc/gzcoredump.conf`",
  },
];

const path = (value: string): Flag => ({ name: "path", short: "p", value });
const json: Flag = { name: "json" };
const force: Flag = { name: "force" };

/** The subcommands, in help's order. */
export const SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: "list",
    operand: "[PID|EXE|COMM]",
    summary: "one line per stored crash, oldest first, like coredumpctl list",
    flags: [
      path("DIR"),
      { name: "pid", value: "PID" },
      { name: "uid", value: "UID" },
      { name: "signal", value: "SIG" },
      { name: "since", value: "TIME" },
      { name: "until", value: "TIME" },
      { name: "signature", value: "ID" },
      { name: "group" },
      { name: "reverse", short: "r" },
      { name: "newest", short: "1" },
      { name: "lines", short: "n", value: "N" },
      { name: "utc" },
      { name: "no-legend" },
      json,
    ],
  },
  {
    name: "info",
    operand: "FILE|ID",
    flags: [
      path("DIR"),
      { name: "exe", value: "PROG" },
      { name: "symbolize" },
      { name: "debug-dir", value: "DIR", multiple: true },
      json,
    ],
    summary: "describe a program, a core or a stored core",
  },
  {
    name: "extract",
    operand: "ID",
    flags: [{ name: "output", short: "o", value: "FILE" }, path("DIR"), force],
    summary: "the raw core, sparse; to stdout without -o (not a terminal)",
  },
  {
    name: "dump",
    operand: "ID",
    flags: [{ name: "output", short: "o", value: "FILE" }, path("DIR"), force],
    summary: "extract, as coredumpctl dump",
  },
  {
    name: "debug",
    operand: "ID",
    flags: [
      path("DIR"),
      { name: "debugger", value: "CMD" },
      {
        name: "debugger-arguments",
        short: "A",
        value: '"ARGS"',
        dashValue: true,
      },
      force,
    ],
    summary: "gdb (or CMD) on the program and core",
  },
  {
    name: "uuid",
    operand: "PROG",
    flags: [],
    summary: "print the .uuid section of a program",
  },
  {
    name: "stamp",
    operand: "PROG",
    flags: [
      { name: "uuid", value: "TEXT" },
      { name: "output", short: "o", value: "OUT" },
      force,
    ],
    summary: "add a .uuid section",
  },
];

/** The flags of the main command line that the parsers know. */
export function parserFlags(): Flag[] {
  return FLAGS.filter((flag) => !flag.helpOnly);
}

/** The names of the main command line's flags of one group. */
export function flagNames(group: FlagGroup): string[] {
  return FLAGS.filter((flag) => flag.group === group).map((flag) => flag.name);
}

/**
 * A table in the shape `node:util` `parseArgs` takes.
 *
 * @example Usage
 * ```ts
 * import { parseArgsOptions, SUBCOMMANDS } from "./flags.ts";
 * import assert from "node:assert/strict";
 *
 * const list = SUBCOMMANDS.find((s) => s.name === "list")!;
 * assert.deepEqual(parseArgsOptions(list.flags).path, {
 *   type: "string",
 *   short: "p",
 * });
 * ```
 *
 * @param flags The flags.
 * @returns Each flag's type and alias by name.
 */
export function parseArgsOptions(
  flags: readonly Flag[],
): Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
> {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const flag of flags) {
    if (flag.helpOnly) continue;
    options[flag.name] = {
      type: isBoolean(flag) ? "boolean" : "string",
      ...(flag.short === undefined ? {} : { short: flag.short }),
      ...(flag.multiple ? { multiple: true } : {}),
    };
  }
  return options;
}

/** Whether a flag takes no value. */
export function isBoolean(flag: Flag): boolean {
  return flag.value === undefined;
}

/**
 * A subcommand's usage after its name: `ID [-o FILE] [-p DIR] [--force]`.
 *
 * @example Usage
 * ```ts
 * import { SUBCOMMANDS, subcommandUsage } from "./flags.ts";
 * import assert from "node:assert/strict";
 *
 * const extract = SUBCOMMANDS.find((s) => s.name === "extract")!;
 * assert.equal(subcommandUsage(extract), "ID [-o FILE] [-p DIR] [--force]");
 * ```
 *
 * @param subcommand The subcommand.
 * @returns Its operand and flags.
 */
export function subcommandUsage(subcommand: Subcommand): string {
  const parts = [subcommand.operand];
  for (const flag of subcommand.flags) {
    const name = flag.short === undefined ? `--${flag.name}` : `-${flag.short}`;
    const text = flag.value === undefined ? name : `${name} ${flag.value}`;
    parts.push(flag.required ? text : `[${text}]`);
  }
  return parts.join(" ");
}
