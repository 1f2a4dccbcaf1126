/**
 * gzcoredump: stores the core dumps the kernel pipes to it, compressed, and
 * compresses and decompresses files (gzip and zlib).
 *
 * This module owns the process: it parses the command line, calls `lib/`,
 * and maps errors to one line on stderr (and the kernel log in capture
 * mode) and an exit code: 0 success, 1 failure, 2 usage error.
 *
 * @module
 */

import { join } from "node:path";
// The parser, the usage text, the config file and the kernel log load with
// this module; each command's module loads when it runs (below), so that
// `-d` does not load the capture, ELF, debug-info and unwinder modules
// (15-20 ms less start-up, measured).
import {
  type Command,
  DEFAULT_CONFIG,
  parseCaptureArgs,
  parseCommand,
  UsageError,
} from "./lib/cli/args.ts";
import { readConfigArgs } from "./lib/cli/config.ts";
import { subcommandHelp, usage } from "./lib/cli/usage.ts";
import { writeKernelLog } from "./lib/cli/kernel_log.ts";
import type { FileDescription } from "./lib/cli/mod.ts";
import { FileExistsError } from "./lib/fs/mod.ts";
import {
  enlargeStdinPipe,
  releaseStdin,
  stdinPressure,
  stdinReadable,
} from "./lib/process/mod.ts";
import { compact, errorText } from "./lib/util/mod.ts";
import denoJson from "./deno.json" with { type: "json" };
import { fstatSync } from "node:fs";

const USAGE = usage(denoJson.version);

/**
 * Runs the tool.
 *
 * @param args The command line, without the program name.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(args);
  } catch (error) {
    report(error);
    return 2;
  }
  try {
    return await run(command, args);
  } catch (error) {
    if (error instanceof FileExistsError) {
      report(new Error(`${error.message}; use --force to replace it`));
      return 1;
    }
    report(error);
    return error instanceof UsageError ? 2 : 1;
  }
}

async function run(command: Command, args: string[]): Promise<number> {
  switch (command.kind) {
    case "help":
      // deno-lint-ignore no-console
      console.log(
        command.subcommand === undefined
          ? USAGE
          : subcommandHelp(command.subcommand),
      );
      return 0;
    case "version":
      // deno-lint-ignore no-console
      console.log(`gzcoredump ${denoJson.version}`);
      return 0;
    case "capture":
      return await capture(command, args);
    case "compress": {
      const { kind: _, input, ...options } = command;
      const toStdout = (options.output ?? (input === "-" ? "-" : "")) === "-";
      if (toStdout && Deno.stdout.isTerminal() && !options.force) {
        throw new UsageError(
          "Cannot write compressed data to a terminal: expected '-o FILE' or stdout redirected (--force writes it anyway), as gzip refuses",
        );
      }
      const { compressFile } = await import(
        "./lib/cli/commands/compress_command.ts"
      );
      try {
        await compressFile(input, { ...options, ...progressOption() });
      } catch (error) {
        // Only stdout can be a pipe: `-o - | head` closed it early, which
        // is no failure (as `decompressFile` and `extractCore` see it).
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      }
      return 0;
    }
    case "decompress": {
      const { kind: _, input, ...options } = command;
      const { decompressFile } = await import(
        "./lib/cli/commands/decompress_command.ts"
      );
      await decompressFile(input, { ...options, ...progressOption() });
      return 0;
    }
    case "uuid": {
      const { readUuid } = await import("./lib/cli/commands/uuid_command.ts");
      await Deno.stdout.write(await readUuid(command.program));
      return 0;
    }
    case "stamp": {
      const { kind: _, program, ...options } = command;
      const { stampUuid } = await import("./lib/cli/commands/stamp_command.ts");
      const result = await stampUuid(program, options);
      // deno-lint-ignore no-console
      console.log(`stamped ${result.output} with .uuid ${result.uuid}`);
      return 0;
    }
    case "list": {
      const {
        kind: _,
        directory,
        json: _json,
        group,
        reverse,
        utc,
        legend,
        last,
        ...filter
      } = command;
      const { readCatalog } = await import("./lib/store/mod.ts");
      const { formatGroups, formatRows, groupRows, listRows } = await import(
        "./lib/cli/commands/list_command.ts"
      );
      let rows = listRows(await readCatalog(directory, filter));
      if (last !== undefined) {
        rows = rows.slice(Math.max(0, rows.length - last));
      }
      if (reverse) rows.reverse();
      const groups = group ? groupRows(rows) : undefined;
      // deno-lint-ignore no-console
      console.log(
        command.json
          ? JSON.stringify(groups ?? rows, null, 2)
          : groups
          ? formatGroups(groups)
          : formatRows(rows, {
            utc,
            legend,
            filtered: Object.keys(filter).length > 0,
          }),
      );
      return 0;
    }
    case "extract": {
      const { kind: _, directory, id, output = "-", force } = command;
      if (output === "-" && Deno.stdout.isTerminal() && !force) {
        throw new UsageError(
          "Cannot write a core to a terminal: expected '-o FILE', or stdout redirected to a file or a pipe (--force writes it anyway)",
        );
      }
      const { extractCore } = await import(
        "./lib/cli/commands/extract_command.ts"
      );
      await extractCore(directory, id, { output, force });
      return 0;
    }
    case "debug": {
      const { kind: _, directory, id, ...options } = command;
      const { debugCore } = await import("./lib/cli/commands/debug_command.ts");
      return await debugCore(directory, id, {
        ...options,
        // deno-lint-ignore no-console
        warn: (message) => console.error(message),
      });
    }
    case "info": {
      const { describeFile, formatDescription } = await import(
        "./lib/cli/commands/info_command.ts"
      );
      const { debuginfodFromEnv } = await import("./lib/debuginfo/mod.ts");
      const description = await describeFile(
        await resolveInfoTarget(command.file, command.directory),
        {
          ...compact({ exe: command.exe }),
          ...(command.symbolize || command.debugDirs.length > 0
            ? {
              symbolize: {
                debugDirs: command.debugDirs,
                debuginfod: debuginfodFromEnv(Deno.env.toObject()),
              },
            }
            : {}),
        },
      );
      // deno-lint-ignore no-console
      console.log(
        command.json
          ? JSON.stringify(
            description.kind === "core"
              ? description.metadata
              : programJson(description),
            null,
            2,
          )
          : formatDescription(description),
      );
      return 0;
    }
    default: {
      const unreachable: never = command;
      throw new Error(`Unknown command ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * `info FILE|ID`: an existing path is described as it is; anything else is
 * an ID in the store (a stored core's file name, or a program name).
 */
async function resolveInfoTarget(
  target: string,
  directory: string,
): Promise<string> {
  // A path is a file; a bare name is a stored core first, as an ID.
  if (target.includes("/")) return target;
  const here = await Deno.lstat(target).then(() => true, () => false);
  const { findCore } = await import("./lib/store/mod.ts");
  let record;
  try {
    record = await findCore(directory, target);
  } catch (error) {
    if (here) return target;
    throw error;
  }
  const stored = join(
    directory,
    record.entry.archive ?? record.entry.metadata!,
  );
  if (here) {
    // deno-lint-ignore no-console
    console.error(
      `gzcoredump: '${target}' is a file here and names a stored core: describing the stored ${stored} (give ./${target} for the file)`,
    );
  }
  return stored;
}

/** True when file descriptor `fd` is open (the kernel closes all but 0). */
function descriptorOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** `info --json` of a program: its identity in the sidecar's vocabulary. */
function programJson(
  description: Extract<FileDescription, { kind: "program" }>,
): Record<string, unknown> {
  const { program } = description;
  return {
    file: description.path,
    size: description.size,
    elf_class: description.elfClass,
    little_endian: description.littleEndian,
    machine: description.machine,
    type: description.type,
    uuid: program.uuid === undefined
      ? null
      : new TextDecoder().decode(program.uuid),
    uuid_truncated: program.uuidTruncated,
    build_id: program.buildId ?? null,
    package: program.packageMetadata ?? null,
  };
}

/**
 * Core capture: never loses the crash's record over anything short of a
 * store that cannot hold even that. SIGTERM, SIGINT and SIGHUP stop the
 * capture: the record is finished, the kernel log says so, and the exit
 * status is 128 + the signal's number.
 */
async function capture(
  command: Extract<Command, { kind: "capture" }>,
  args: string[],
): Promise<number> {
  if (Deno.stdin.isTerminal()) {
    throw new UsageError(
      "Cannot capture a core from a terminal: '-c' without '-f' reads a core from stdin, as core_pattern pipes it (use '-c -f FILE' to compress a file)",
    );
  }
  // The kernel closes every descriptor but stdin: a stdout that is open,
  // with no -p, is someone's `gzcoredump -c < file > out.gz`.
  if (command.defaultDirectory && descriptorOpen(1)) {
    throw new UsageError(
      "Cannot capture: stdin is not the kernel's (stdout is open and no -p was given); to compress stdin to stdout use 'gzcoredump -c -f - -o -', to store a core by hand give '-p DIR'",
    );
  }
  // A pipe of 16 MiB, asked for before anything else: the kernel writes on
  // while this thread is busy elsewhere (loading the capture's modules,
  // starting workers, a spill write, a turn of the event loop) instead of
  // waiting at every 64 KiB, then 1 MiB. The kernel's helper has
  // CAP_SYS_RESOURCE and may exceed /proc/sys/fs/pipe-max-size; others get
  // that (1 MiB by default). Through the kernel on the mixed 1 GiB core:
  // crash to release 1.30-1.65 s (median 1.39, 6 rounds) against
  // 1.23-2.10 s (median 1.73) with 1 MiB. Asked for here rather than once
  // the capture's modules had loaded (15-40 ms later): 0.82-1.20 s
  // (median 0.93, 6 rounds in turns) against 0.90-1.10 s (median 1.03).
  enlargeStdinPipe(16 << 20);
  // Made here, so that the forced exit below gives the pipe its flags back.
  using pressure = stdinPressure();
  const stop = new AbortController();
  const signals = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
  const listeners = Object.keys(signals).map((name) => {
    const signal = name as keyof typeof signals;
    const listener = () => {
      if (stop.signal.aborted) return;
      stop.abort(signal);
      // The capture finishes its record and exits; should anything hold it,
      // it exits anyway, and the next capture marks the record interrupted.
      const deadline = setTimeout(() => {
        pressure?.restore();
        Deno.exit(128 + signals[signal]);
      }, 10_000);
      Deno.unrefTimer(deadline);
    };
    Deno.addSignalListener(signal, listener);
    return () => Deno.removeSignalListener(signal, listener);
  });
  const pid = command.facts.pid === undefined
    ? ""
    : ` of pid ${command.facts.pid}`;
  // Loaded here, so that a module that does not load is a lost core in the
  // kernel log too.
  let capturing: typeof import("./lib/capture/mod.ts") | undefined;
  try {
    capturing = await import("./lib/capture/mod.ts").catch(
      (error: unknown) => {
        const stack = error instanceof Error ? error.stack ?? "" : "";
        const at = /file:\/\/\S+:\d+:\d+/.exec(stack);
        throw new Error(
          `Cannot load the capture's modules: ${errorText(error)}${
            at === null ? "" : ` at ${at[0]}`
          }; expected them to load (embedded in the binary)`,
        );
      },
    );
    const { captureCore } = capturing;
    // Options that do not fit in core_pattern come from the config file.
    const config = await readConfigArgs(command.configPath ?? DEFAULT_CONFIG, {
      required: command.configPath !== undefined,
    });
    if (config.args.length > 0 || config.warnings.length > 0) {
      command = parseCaptureArgs([...config.args, ...args]);
      command.warnings.unshift(...config.warnings);
    }
    const {
      kind: _,
      defaultDirectory: _default,
      configPath: _config,
      ...options
    } = command;
    const result = await captureCore(stdinReadable(pressure), {
      ...options,
      ...compact({
        pressure: pressure && (() => pressure.pressed()),
        backlog: pressure && (() => pressure.available()),
      }),
      signal: stop.signal,
      // Closing the pipe lets the kernel release the crashed process while
      // the archive is finished, synced and described.
      release: () => {
        pressure?.restore();
        releaseStdin();
      },
    });
    // One kernel log line per crash (/dev/kmsg is rate limited) that says
    // where the core is, or why it is not and where its record is.
    const where = result.metadata === undefined
      ? "no metadata could be written"
      : `metadata in ${result.metadata}`;
    const crashed = result.crashedIn === undefined
      ? ""
      : `; ${result.crashedIn}`;
    const message = result.archive === undefined
      ? `${
        result.lost ? "lost" : "dropped"
      } core${pid}: ${result.reason}; ${where}${crashed}`
      : `saved core${pid} (${result.coreSize} bytes) to ${result.archive}${
        result.reason === undefined ? "" : ` (${result.reason})`
      }${crashed}`;
    await log(message, result.warnings, result.archive === undefined);
    if (result.interrupted !== undefined) {
      return 128 + signals[result.interrupted as keyof typeof signals];
    }
    return result.lost ? 1 : 0;
  } catch (error) {
    const warnings = capturing !== undefined &&
        error instanceof capturing.CaptureFailedError
      ? error.warnings
      : command.warnings;
    await log(`lost core${pid}: ${messageOf(error)}`, warnings, true);
    return 1;
  } finally {
    for (const remove of listeners) remove();
  }
}

/**
 * A progress bar on stderr, only when stderr is a terminal, and only for a
 * job still running after half a second (so small files stay silent).
 */
function progressOption(): {
  onProgress?: (done: number, total: number | undefined) => void;
} {
  if (!Deno.stderr.isTerminal()) return {};
  const encoder = new TextEncoder();
  const started = performance.now();
  let shown = false;
  return {
    onProgress(done, total) {
      const finished = done === total;
      if (!shown && (finished || performance.now() - started < 500)) return;
      shown = true;
      const mib = (n: number) => (n / 1048576).toFixed(1);
      let line = `${mib(done)} MiB`;
      if (total !== undefined && total > 0) {
        const ratio = Math.min(1, done / total);
        const filled = Math.round(ratio * 30);
        line = `[${"#".repeat(filled)}${" ".repeat(30 - filled)}] ${
          Math.floor(ratio * 100)
        }% ${line} of ${mib(total)} MiB`;
      }
      Deno.stderr.writeSync(encoder.encode(`\r${line}${finished ? "\n" : ""}`));
    },
  };
}

/**
 * Capture mode's report: each warning, and a lost or dropped core, on
 * stderr (nobody may read it), and one line with all of it in the kernel
 * log, where `dmesg` shows it.
 */
async function log(
  message: string,
  warnings: string[],
  problem: boolean,
): Promise<void> {
  for (const line of problem ? [...warnings, message] : warnings) {
    // deno-lint-ignore no-console
    console.error(`gzcoredump: ${line}`);
  }
  const details = warnings.length === 0 ? "" : ` (${warnings.join("; ")})`;
  await writeKernelLog(message + details, {
    priority: message.startsWith("lost")
      ? "error"
      : problem || warnings.length > 0
      ? "warning"
      : "info",
  });
}

function report(error: unknown): void {
  // deno-lint-ignore no-console
  console.error(`gzcoredump: ${messageOf(error)}`);
}

/** The message of an error and of its causes, on one line. */
function messageOf(error: unknown): string {
  let message = errorText(error);
  let cause = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; cause !== undefined && depth < 3; depth++) {
    const text = errorText(cause);
    const reason = text.replace(/ \(os error \d+\).*$/, "").toLowerCase();
    if (!message.toLowerCase().includes(reason)) {
      message += `; caused by: ${text}`;
    }
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return message;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
