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

import { type Command, parseCommand, UsageError } from "./lib/args.ts";
import { FileExistsError } from "./lib/atomic_file.ts";
import { captureCore } from "./lib/capture.ts";
import { compressFile } from "./lib/commands/compress_command.ts";
import { decompressFile } from "./lib/commands/decompress_command.ts";
import {
  describeFile,
  type FileDescription,
  formatDescription,
} from "./lib/commands/info_command.ts";
import { stampUuid } from "./lib/commands/stamp_command.ts";
import { readUuid } from "./lib/commands/uuid_command.ts";
import { writeKernelLog } from "./lib/kernel_log.ts";
import { errorText } from "./lib/_text.ts";
import denoJson from "./deno.json" with { type: "json" };

const USAGE = `gzcoredump version: ${denoJson.version}
Usage:
  gzcoredump -c [-p path] [-a argument] [kernel facts]   (from core_pattern)
  gzcoredump -c -f inputfile [-o outputfile]
  gzcoredump -d -f inputfile [-o outputfile]
  gzcoredump uuid PROG                 print the .uuid section of a program
  gzcoredump stamp PROG [--uuid TEXT] [-o OUT] [--force]
                                       add a .uuid section (a random UUID by default)
  gzcoredump info FILE [--json]        describe a program, a core or a stored core
Options:
  -h, --help          this help
  -V, --version       print the version
  -c, --compress      compress: a core from stdin into the store, or -f into -o
  -d, --decompress    decompress a gzip or zlib file (the format is read from the data)
  -p, --path DIR      with -c, the store directory for cores (default /var/crash)
  -a, --argument ARG  with -c, name part of the stored core, e.g. %e
  -f, --file IN       input file; - is stdin
  -o, --output OUT    output file; - is stdout (default IN.gz, IN.zz, or IN without .gz/.zz)
  -F, --format FMT    with -c, gz (default) or zlib
  -l, --level N       with -c, compression level 1-9 (default: CompressionStream's)
      --force         replace an existing output file
Kernel facts, for core_pattern (all optional):
  -P, --pid %P   -u, --uid %u   -g, --gid %g   -s, --signal %s   -t, --time %t
  -r, --rlimit %c   -D, --dumpable %d   -H, --hostname %h   -E, --exe %E
Example core_pattern:
  |/usr/local/bin/gzcoredump -c -p /var/crash -P %P -s %s -t %t -a %e
Exit status: 0 success, 1 failure, 2 usage error.`;

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
    return await run(command);
  } catch (error) {
    if (error instanceof FileExistsError) {
      report(new Error(`${error.message}; use --force to replace it`));
      return 1;
    }
    report(error);
    return error instanceof UsageError ? 2 : 1;
  }
}

async function run(command: Command): Promise<number> {
  switch (command.kind) {
    case "help":
      // deno-lint-ignore no-console
      console.log(USAGE);
      return 0;
    case "version":
      // deno-lint-ignore no-console
      console.log(`gzcoredump ${denoJson.version}`);
      return 0;
    case "capture":
      return await capture(command);
    case "compress": {
      const { input, format, force } = command;
      await compressFile(input, {
        format,
        force,
        ...(command.output === undefined ? {} : { output: command.output }),
        ...(command.level === undefined ? {} : { level: command.level }),
        ...progressOption(),
      });
      return 0;
    }
    case "decompress": {
      const { input, force } = command;
      await decompressFile(input, {
        force,
        ...(command.output === undefined ? {} : { output: command.output }),
        ...progressOption(),
      });
      return 0;
    }
    case "uuid":
      await Deno.stdout.write(await readUuid(command.program));
      return 0;
    case "stamp": {
      const result = await stampUuid(command.program, {
        force: command.force,
        ...(command.uuid === undefined ? {} : { uuid: command.uuid }),
        ...(command.output === undefined ? {} : { output: command.output }),
      });
      // deno-lint-ignore no-console
      console.log(`stamped ${result.output} with .uuid ${result.uuid}`);
      return 0;
    }
    case "info": {
      const description = await describeFile(command.file);
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

/** Core capture: never loses the core over anything short of I/O failure. */
async function capture(
  command: Extract<Command, { kind: "capture" }>,
): Promise<number> {
  if (Deno.stdin.isTerminal()) {
    throw new UsageError(
      "Cannot capture a core from a terminal: '-c' without '-f' reads a core from stdin, as core_pattern pipes it (use '-c -f FILE' to compress a file)",
    );
  }
  try {
    const result = await captureCore(Deno.stdin.readable, {
      directory: command.directory,
      format: command.format,
      facts: command.facts,
      warnings: command.warnings,
      ...(command.argument === undefined ? {} : { argument: command.argument }),
      ...(command.level === undefined ? {} : { level: command.level }),
    });
    const pid = command.facts.pid === undefined
      ? ""
      : ` of pid ${command.facts.pid}`;
    // One kernel log line per crash: /dev/kmsg is rate limited.
    await log(
      `saved core${pid} (${result.coreSize} bytes) to ${result.archive}`,
      result.warnings,
    );
    return 0;
  } catch (error) {
    await log(`lost core: ${messageOf(error)}`, command.warnings);
    return 1;
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
 * Capture mode's report: each warning and a lost core on stderr (nobody may
 * read it), and one line with all of it in the kernel log, where `dmesg`
 * shows it.
 */
async function log(message: string, warnings: string[]): Promise<void> {
  const lost = message.startsWith("lost core");
  for (const line of lost ? [...warnings, message] : warnings) {
    // deno-lint-ignore no-console
    console.error(`gzcoredump: ${line}`);
  }
  const details = warnings.length === 0 ? "" : ` (${warnings.join("; ")})`;
  await writeKernelLog(message + details, {
    priority: lost ? "error" : warnings.length > 0 ? "warning" : "info",
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
