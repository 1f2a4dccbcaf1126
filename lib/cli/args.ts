/**
 * Command-line parsing: turns `Deno.args` into a {@linkcode Command}.
 *
 * Every mode but core capture is parsed strictly with `node:util`
 * `parseArgs`, so a typo is a usage error. Core capture (`-c` with no `-f`,
 * the mode the kernel starts through `core_pattern`) is parsed leniently by
 * {@linkcode parseCaptureArgs}: nobody can correct a bad argument there, and
 * none may cost the core, so problems become warnings and defaults apply.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Flag,
  flagNames,
  parseArgsOptions,
  parserFlags,
  SUBCOMMANDS,
  subcommandUsage,
} from "./flags.ts";
import type { Format } from "../compress/mod.ts";
import {
  compact,
  errorText,
  parseDuration,
  parseRate,
  parseSize,
  printable,
  splitWords,
} from "../util/mod.ts";
import { type KernelFacts, signalName } from "../process/mod.ts";
import {
  type CatalogFilter,
  DEFAULT_DIRECTORY,
  type StoreOptions,
} from "../store/mod.ts";
import type { CaptureOptions } from "../capture/mod.ts";
import type {
  CompressFileOptions,
  DebugOptions,
  DecompressFileOptions,
  StampOptions,
} from "./commands/mod.ts";

export { DEFAULT_DIRECTORY };
export type { KernelFacts, StoreOptions };

/**
 * Capture a core from stdin into a store directory (`core_pattern` mode):
 * the capture's own options, as `captureCore` takes them.
 */
export interface CaptureCommand extends
  Pick<
    CaptureOptions,
    "directory" | "argument" | "level" | "jobs"
  >,
  Required<Pick<CaptureOptions, "format" | "facts" | "store" | "warnings">> {
  /** Which command: `capture`. */
  kind: "capture";
  /** True when `-p` was not given (or was unusable) and the default applies. */
  defaultDirectory: boolean;
  /** `--config FILE`: where more options are read from. */
  configPath?: string;
}

/** Compress a file (or stdin) with `-c -f`: `compressFile`'s options. */
export interface CompressCommand
  extends
    Omit<CompressFileOptions, "onProgress" | "format" | "force">,
    Required<Pick<CompressFileOptions, "format" | "force">> {
  /** Which command: `compress`. */
  kind: "compress";
  /** Input path, or `-` for stdin. */
  input: string;
}

/** Decompress a gzip or zlib file (or stdin) with `-d`. */
export interface DecompressCommand
  extends
    Omit<DecompressFileOptions, "onProgress" | "force">,
    Required<Pick<DecompressFileOptions, "force">> {
  /** Which command: `decompress`. */
  kind: "decompress";
  /** Input path, or `-` for stdin. */
  input: string;
}

/** `uuid PROG`: print a program's `.uuid` bytes. */
export interface UuidCommand {
  /** Which command: `uuid`. */
  kind: "uuid";
  /** The program's path. */
  program: string;
}

/** `stamp PROG [--uuid TEXT] [-o OUT] [--force]`: add a `.uuid` section. */
export interface StampCommand
  extends Omit<StampOptions, "force">, Required<Pick<StampOptions, "force">> {
  /** Which command: `stamp`. */
  kind: "stamp";
  /** The program's path. */
  program: string;
}

/** `info FILE|ID [--json]`: describe a program, a core, or a stored core. */
export interface InfoCommand {
  /** Which command: `info`. */
  kind: "info";
  /** A path, or an ID in the store (a core's file name or a program name). */
  file: string;
  /** `--json`: the description as JSON. */
  json: boolean;
  /** The store an ID is looked up in. */
  directory: string;
  /** `--exe PROG`: the program, for a core whose notes do not name it. */
  exe?: string;
  /** `--symbolize`: name the trace's frames on this host. */
  symbolize: boolean;
  /** `--debug-dir DIR`, in order: where debug files are looked for first. */
  debugDirs: string[];
}

/** `list [PROGRAM]`: the stored cores, oldest first, filtered. */
export interface ListCommand extends CatalogFilter {
  /** Which command: `list`. */
  kind: "list";
  /** The store. */
  directory: string;
  /** `--json`: the rows as JSON. */
  json: boolean;
  /** `--group`: one line per crash signature. */
  group: boolean;
  /** `-r`: newest first. */
  reverse: boolean;
  /** `--utc`: times in UTC, not local. */
  utc: boolean;
  /** False for `--no-legend`: no header line. */
  legend: boolean;
  /** `-n N` (or `-1`): only the newest N. */
  last?: number;
}

/** `extract ID [-o FILE]` (and `dump`): the raw core, sparse. */
export interface ExtractCommand {
  /** The raw core's path; `-` or none is stdout. */
  output?: string;
  /** Replace an existing file; write to a terminal. */
  force: boolean;
  /** Which command: `extract`. */
  kind: "extract";
  /** The stored core: a file name, or a program meaning its newest. */
  id: string;
  /** The store. */
  directory: string;
}

/** `debug ID`: gdb (or another debugger) on the program and the core. */
export interface DebugCommand extends DebugOptions {
  /** Which command: `debug`. */
  kind: "debug";
  /** The stored core: a file name, or a program meaning its newest. */
  id: string;
  /** The store. */
  directory: string;
}

/** Print usage. */
export interface HelpCommand {
  /** Which command: `help`. */
  kind: "help";
  /** A subcommand's own help (`list --help`), when asked for one. */
  subcommand?: string;
}

/** Print the version. */
export interface VersionCommand {
  /** Which command: `version`. */
  kind: "version";
}

/** Everything the command line can ask for. */
export type Command =
  | CaptureCommand
  | CompressCommand
  | DecompressCommand
  | UuidCommand
  | StampCommand
  | InfoCommand
  | ListCommand
  | ExtractCommand
  | DebugCommand
  | HelpCommand
  | VersionCommand;

/** Capture options read before the command line's (which win). */
export const DEFAULT_CONFIG = "/etc/gzcoredump.conf";

/** A command line that cannot be carried out as written (exit code 2). */
export class UsageError extends Error {
  /** Creates the error with a message saying what was wrong. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** The option table shared by the strict and the lenient parser. */
const OPTIONS = parseArgsOptions(parserFlags());

type OptionName = string;
type Values = Partial<Record<OptionName, string | boolean>>;

/** Store options of capture mode (also read from the config file). */
const STORE_OPTIONS = flagNames("store");

/** Options that only make sense in capture mode. */
const FACT_OPTIONS = flagNames("fact") as (keyof KernelFacts)[];

/** Flags of the original tool or of gzip that users may reach for. */
const RENAMED: Record<string, string> = {
  "-k": "the input is always kept",
  "--keep": "the input is always kept",
  "--stdout": "use '-o -'",
  "-z": "use '-c'",
};

/**
 * Parses a command line.
 *
 * @param args The arguments, without the program name.
 * @returns The command to run.
 * @throws {UsageError} When the command line is malformed (never in capture
 * mode, where problems become {@linkcode CaptureCommand.warnings}).
 *
 * @example Usage
 * ```ts
 * import { parseCommand } from "./args.ts";
 * import assert from "node:assert/strict";
 *
 * const command = parseCommand(["-d", "-f", "core.gz", "-o", "core"]);
 * assert.deepEqual(command, {
 *   kind: "decompress",
 *   input: "core.gz",
 *   output: "core",
 *   force: false,
 * });
 * ```
 */
export function parseCommand(args: string[]): Command {
  const first = args[0];
  if (first !== undefined && SUBCOMMAND_TABLE.has(first)) {
    return parseSubcommand(first as SubcommandName, args.slice(1));
  }
  if (isCaptureLine(args)) return parseCaptureArgs(args);
  for (const arg of args) {
    const hint = RENAMED[arg];
    if (hint !== undefined) {
      throw new UsageError(`Cannot use option '${arg}': ${hint}`);
    }
  }
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    });
    // No main flag is given more than once: every value is one string.
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (error) {
    throw new UsageError(
      `Cannot parse the command line: ${errorText(error)}`,
      { cause: error },
    );
  }
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (positionals.length > 0) {
    throw new UsageError(
      `Cannot parse the command line: unexpected argument '${
        positionals[0]
      }', expected options only (see --help)`,
    );
  }
  if (values.compress && values.decompress) {
    throw new UsageError(
      "Cannot both compress and decompress: choose '-c' or '-d'",
    );
  }
  if (!values.compress && !values.decompress) {
    throw new UsageError(
      "Cannot tell what to do: expected '-c' (compress) or '-d' (decompress), see --help",
    );
  }
  for (
    const name of [
      ...FACT_OPTIONS,
      ...STORE_OPTIONS,
      "path",
      "argument",
    ] as const
  ) {
    if (values[name] !== undefined) {
      throw new UsageError(
        `Cannot use '--${name}' with '-f' or '-d': it only applies to core capture ('-c' reading stdin)`,
      );
    }
  }
  const input = values.file === undefined ? "-" : String(values.file);
  const output = values.output === undefined
    ? undefined
    : String(values.output);
  const force = values.force === true;
  if (values.decompress) {
    for (const name of ["format", "level"] as const) {
      if (values[name] !== undefined) {
        throw new UsageError(
          `Cannot use '--${name}' with '-d': the format is read from the data`,
        );
      }
    }
    const jobs = parseJobs(values.jobs);
    return {
      kind: "decompress",
      input,
      ...compact({ output, jobs }),
      force,
    };
  }
  const format = parseFormat(values.format);
  const level = parseLevel(values.level);
  const jobs = parseJobs(values.jobs);
  return {
    kind: "compress",
    input,
    ...compact({ output, level, jobs }),
    format,
    force,
  };
}

/**
 * Parses a capture command line leniently: unknown options, missing or
 * malformed values become warnings and the capture goes on with defaults.
 *
 * Before Linux 5.3 the kernel split `core_pattern` after expanding `%e` and
 * `%E`, so a program name with spaces arrives as several arguments: stray
 * arguments after `-a` or `-E` are joined back to their value. A name that
 * splits into something like an option (`x --max-age=0`) would still be
 * read as one, so `--` ends the options: everything after it is the name,
 * joined, never an option (install.sh writes `-- %e` last).
 *
 * @param args The arguments, without the program name.
 * @returns The capture command, with any problems in `warnings`.
 *
 * @example Usage
 * ```ts
 * import { parseCaptureArgs } from "./args.ts";
 * import assert from "node:assert/strict";
 *
 * const command = parseCaptureArgs(["-c", "-p", "/srv/crash", "-a", "my", "prog", "--bogus"]);
 * assert.equal(command.directory, "/srv/crash");
 * assert.equal(command.argument, "my prog");
 * assert.deepEqual(command.warnings, ["ignored unknown argument '--bogus'"]);
 * ```
 */
export function parseCaptureArgs(args: string[]): CaptureCommand {
  const warnings: string[] = [];
  const values: Partial<Record<OptionName, string>> = {};
  let joinTo: OptionName | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      const rest = args.slice(i + 1).join(" ");
      if (rest !== "") values.argument = rest;
      break;
    }
    const option = lookupOption(arg);
    if (option === undefined) {
      if (joinTo !== undefined && !arg.startsWith("-")) {
        values[joinTo] = `${values[joinTo]} ${arg}`;
      } else {
        warnings.push(`ignored unknown argument '${printable(arg)}'`);
      }
      continue;
    }
    joinTo = undefined;
    const [name, inline] = option;
    if (OPTIONS[name]!.type === "boolean") {
      if (name === "ignore-rlimit") values[name] = "true";
      else if (name !== "compress") {
        warnings.push(`ignored option '${printable(arg)}' in capture mode`);
      }
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= args.length) {
        warnings.push(`ignored option '${arg}': it needs a value`);
        continue;
      }
      value = args[++i]!;
    }
    values[name] = value;
    if (name === "argument" || name === "exe") joinTo = name;
  }

  const facts: KernelFacts = {};
  for (const name of FACT_OPTIONS) {
    const value = values[name];
    if (value === undefined) continue;
    if (name === "exe" || name === "hostname") {
      facts[name] = value;
      continue;
    }
    // RLIM_INFINITY arrives as 18446744073709551615: no limit.
    const number = name === "rlimit" && /^[0-9]{16,20}$/.test(value)
      ? Number.POSITIVE_INFINITY
      : parseWholeNumber(value);
    if (number === undefined) {
      warnings.push(
        `ignored '--${name} ${printable(value)}': expected a whole number`,
      );
    } else {
      facts[name] = number;
    }
  }
  let format: Format = "gzip";
  try {
    format = parseFormat(values.format);
  } catch (error) {
    warnings.push(`${(error as Error).message}; using gzip`);
  }
  let level: number | undefined;
  try {
    level = parseLevel(values.level);
  } catch (error) {
    warnings.push(`${(error as Error).message}; using the default level`);
  }
  let jobs: number | undefined;
  try {
    jobs = parseJobs(values.jobs);
  } catch (error) {
    warnings.push(`${(error as Error).message}; using one per core`);
  }
  const store = parseStoreOptions(values, warnings);
  const directory = values.path ?? DEFAULT_DIRECTORY;
  if (directory === "") warnings.push("ignored an empty '-p' value");
  return {
    kind: "capture",
    directory: directory === "" ? DEFAULT_DIRECTORY : directory,
    defaultDirectory: values.path === undefined || directory === "",
    ...compact({
      argument: values.argument,
      level,
      jobs,
      configPath: values.config,
    }),
    format,
    facts,
    store,
    warnings,
  };
}

/** Reads the store options; a bad value is a warning and the default applies. */
function parseStoreOptions(
  values: Partial<Record<OptionName, string>>,
  warnings: string[],
): StoreOptions {
  const store: StoreOptions = {};
  const read = <T>(
    name: OptionName,
    parse: (text: string) => T,
  ): T | undefined => {
    const text = values[name];
    if (text === undefined) return undefined;
    try {
      return parse(text);
    } catch (error) {
      warnings.push(
        `ignored '--${name} ${printable(text)}': ${
          errorText(error).replace(/^Cannot read \w+ '.*?': /, "")
        }`,
      );
      return undefined;
    }
  };
  const whole = (text: string) => {
    const n = parseWholeNumber(text);
    if (n === undefined) throw new Error("expected a whole number");
    return n;
  };
  const bytes = (text: string) => {
    const size = parseSize(text);
    if (!("bytes" in size)) throw new Error("expected bytes, not a percentage");
    return size.bytes;
  };
  const mode = (text: string) => {
    if (!/^0?[0-7]{3}$/.test(text)) {
      throw new Error("expected octal permission bits like 0640");
    }
    const bits = Number.parseInt(text, 8);
    if (bits & 0o137) {
      throw new Error(
        "expected at most owner read-write and group read (0640)",
      );
    }
    return bits;
  };
  const argv = (text: string) => {
    const words = text.trim().split(/\s+/);
    if (!words[0]?.startsWith("/")) {
      throw new Error("expected an absolute program path and its arguments");
    }
    return words;
  };
  const set = <K extends keyof StoreOptions>(
    key: K,
    value: StoreOptions[K] | undefined,
  ) => {
    if (value !== undefined) store[key] = value;
  };
  set("maxUse", read("max-use", parseSize));
  set("keepFree", read("keep-free", parseSize));
  set("maxCount", read("max-count", whole));
  set("maxRecords", read("max-records", whole));
  set("maxSize", read("max-size", bytes));
  set("spillMax", read("spill-max", bytes));
  set("maxAgeMs", read("max-age", parseDuration));
  set("rate", read("rate", parseRate));
  set("mode", read("mode", mode));
  set("before", read("before", argv));
  set("after", read("after", argv));
  set(
    "signatureSkip",
    read("signature-skip", (text: string) => {
      const names = text.split(",").map((n) => n.trim()).filter((n) => n);
      if (names.length === 0) throw new Error("expected function names");
      return names;
    }),
  );
  set(
    "symbolizeOnline",
    read("symbolize-online", (text: string) => {
      const urls = text.trim().split(/\s+/).filter((u) => u);
      if (urls.length === 0 || !urls.every((u) => /^https?:\/\/\S+$/.test(u))) {
        throw new Error("expected http:// or https:// server URLs");
      }
      return urls.map((u) => u.replace(/\/+$/, ""));
    }),
  );
  if (values["ignore-rlimit"] !== undefined) store.ignoreRlimit = true;
  return store;
}

type SubcommandName =
  | "uuid"
  | "stamp"
  | "info"
  | "list"
  | "extract"
  | "dump"
  | "debug";

const SUBCOMMAND_TABLE = new Map(SUBCOMMANDS.map((s) => [s.name, s]));

/** The subcommands: strict, each with its own options. */
function parseSubcommand(
  name: SubcommandName,
  args: string[],
): Command {
  const subcommand = SUBCOMMAND_TABLE.get(name)!;
  const usage = subcommandUsage(subcommand);
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: joinDashValues(args, subcommand.flags),
      options: {
        ...parseArgsOptions(subcommand.flags),
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    throw new UsageError(`Cannot parse '${name}': ${errorText(error)}`, {
      cause: error,
    });
  }
  if (values.help) return { kind: "help", subcommand: name };
  const least = name === "list" ? 0 : 1;
  if (positionals.length < least || positionals.length > 1) {
    throw new UsageError(
      `Cannot run '${name}': expected ${least === 0 ? "at most one" : "one"} ${
        name === "list" ? "program name" : "file"
      }, found ${positionals.length} (usage: gzcoredump ${name} ${usage})`,
    );
  }
  const file = positionals[0];
  const text = (key: string) =>
    typeof values[key] === "string" ? values[key] as string : undefined;
  const directory = text("path") ?? DEFAULT_DIRECTORY;
  switch (name) {
    case "uuid":
      return { kind: "uuid", program: file! };
    case "info":
      return {
        kind: "info",
        file: file!,
        json: values.json === true,
        directory,
        symbolize: values.symbolize === true,
        debugDirs: Array.isArray(values["debug-dir"])
          ? values["debug-dir"] as string[]
          : [],
        ...compact({ exe: text("exe") }),
      };
    case "stamp":
      return {
        kind: "stamp",
        program: file!,
        ...compact({ uuid: text("uuid"), output: text("output") }),
        force: values.force === true,
      };
    case "list": {
      const number = (flag: string) => {
        const value = text(flag);
        if (value === undefined) return undefined;
        const n = parseWholeNumber(value);
        if (n === undefined) {
          throw new UsageError(
            `Cannot use '--${flag} ${
              printable(value)
            }': expected a whole number`,
          );
        }
        return n;
      };
      const signature = text("signature");
      if (signature !== undefined && !/^[0-9a-f]{1,16}$/.test(signature)) {
        throw new UsageError(
          `Cannot use '--signature ${
            printable(signature)
          }': expected a signature id, up to 16 hex digits`,
        );
      }
      const time = (flag: string) => {
        const value = text(flag);
        return value === undefined ? undefined : parseSince(value, flag);
      };
      // As coredumpctl matches: a number is a PID, a path an EXE, anything
      // else a command name (or the -a name).
      const match = file === undefined
        ? {}
        : /^\d+$/.test(file)
        ? { pid: Number(file) }
        : file.includes("/")
        ? { exe: file }
        : { program: file };
      const pid = number("pid");
      return {
        kind: "list",
        directory,
        json: values.json === true,
        group: values.group === true,
        reverse: values.reverse === true,
        utc: values.utc === true,
        legend: values["no-legend"] !== true,
        ...compact({
          ...match,
          ...(pid === undefined ? {} : { pid }),
          uid: number("uid"),
          signal: signalNumber(text("signal")),
          since: time("since"),
          until: time("until"),
          signature,
          last: values.newest === true ? 1 : number("lines"),
        }),
      };
    }
    case "extract":
    case "dump":
      // No -o: stdout, as coredumpctl dump (refused on a terminal).
      return {
        kind: "extract",
        id: file!,
        directory,
        force: values.force === true,
        ...compact({ output: text("output") }),
      };
    case "debug":
      return {
        kind: "debug",
        id: file!,
        directory,
        force: values.force === true,
        ...compact({
          debugger: text("debugger"),
          debuggerArguments: debuggerArguments(text("debugger-arguments")),
        }),
      };
  }
}

/**
 * The value of a flag that takes one starting with a dash (`-A "-batch -ex
 * bt"`), which `parseArgs` takes for an option, joined to its flag as
 * `--name=value`, where it is the value it is.
 */
function joinDashValues(args: string[], flags: readonly Flag[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const flag = flags.find((f) =>
      f.dashValue && (arg === `--${f.name}` || arg === `-${f.short}`)
    );
    if (flag !== undefined && i + 1 < args.length) {
      joined.push(`--${flag.name}=${args[++i]}`);
    } else joined.push(arg);
  }
  return joined;
}

/** `--signal`: a number, or a name with or without `SIG`. */
function signalNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = parseWholeNumber(text);
  if (n !== undefined) return n;
  const name = `SIG${text.toUpperCase().replace(/^SIG/, "")}`;
  const found = Array.from({ length: 64 }, (_, i) => i + 1).find((n) =>
    signalName(n) === name
  );
  if (found === undefined) {
    throw new UsageError(
      `Cannot use '--signal ${
        printable(text)
      }': expected a signal number or name like SIGSEGV`,
    );
  }
  return found;
}

/** `-A "ARGS"`: words split as a shell splits them, none run. */
function debuggerArguments(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    return splitWords(text);
  } catch (error) {
    throw new UsageError(
      `Cannot use '--debugger-arguments': ${
        errorText(error).replace(/^Cannot split /, "")
      }`,
    );
  }
}

/** `--since`: an ISO date or time, or a duration ago (`2h`, `3d`). */
function parseSince(text: string, flag = "since"): Date {
  if (/^\d+(\.\d+)?[smhdw]$/.test(text)) {
    return new Date(Date.now() - parseDuration(text));
  }
  const time = new Date(text);
  if (Number.isNaN(time.getTime())) {
    throw new UsageError(
      `Cannot use '--${flag} ${
        printable(text)
      }': expected a date like 2026-11-26 or 2026-11-26T09:00:00Z, or a time ago like 2h`,
    );
  }
  return time;
}

/** A capture line has `-c` and reads stdin: no `-f`, `-d`, `-h` or `-V`. */
function isCaptureLine(args: string[]): boolean {
  let compress = false;
  const end = args.indexOf("--");
  const options = end === -1 ? args : args.slice(0, end);
  for (let i = 0; i < options.length; i++) {
    const option = lookupOption(options[i]!);
    if (option === undefined) continue;
    const [name, inline] = option;
    if (OPTIONS[name]!.type === "string") {
      if (inline === undefined) i++;
      continue;
    }
    if (name === "compress") compress = true;
    else if (name !== "force" && name !== "ignore-rlimit") return false;
  }
  return compress && !options.some((arg) => {
    const option = lookupOption(arg);
    return option !== undefined &&
      ["file", "output"].includes(option[0]);
  });
}

/** Finds `-x`, `--name` or `--name=value` in the option table. */
function lookupOption(
  arg: string,
): [OptionName, string | undefined] | undefined {
  if (arg.startsWith("--")) {
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!Object.hasOwn(OPTIONS, name)) return undefined;
    return [name as OptionName, eq === -1 ? undefined : arg.slice(eq + 1)];
  }
  if (arg.length === 2 && arg[0] === "-") {
    for (const [name, spec] of Object.entries(OPTIONS)) {
      if (spec.short === arg[1]) {
        return [name as OptionName, undefined];
      }
    }
  }
  return undefined;
}

function parseFormat(value: string | boolean | undefined): Format {
  if (value === undefined) return "gzip";
  switch (value) {
    case "gz":
    case "gzip":
      return "gzip";
    case "zlib":
    case "zz":
      return "zlib";
  }
  throw new UsageError(
    `Cannot use format '${printable(String(value))}': expected 'gz' or 'zlib'`,
  );
}

function parseLevel(value: string | boolean | undefined): number | undefined {
  return parseBounded(value, "level", 9);
}

function parseJobs(value: string | boolean | undefined): number | undefined {
  return parseBounded(value, "jobs", 256);
}

/** A whole number from 1 to `max`, or a UsageError naming the option. */
function parseBounded(
  value: string | boolean | undefined,
  name: string,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const number = parseWholeNumber(String(value));
  if (number === undefined || number < 1 || number > max) {
    throw new UsageError(
      `Cannot use ${name} '${
        printable(String(value))
      }': expected a whole number from 1 to ${max}`,
    );
  }
  return number;
}

function parseWholeNumber(value: string): number | undefined {
  if (!/^[0-9]{1,15}$/.test(value)) return undefined;
  return Number(value);
}
