/**
 * `gzcoredump debug ID [--debugger CMD]`: unpacks a stored core to a private
 * temporary file and runs gdb (or CMD, as coredumpctl's `--debugger`) on the
 * program and the core; the file is removed afterwards.
 *
 * Signals: SIGINT (Ctrl-C) while the core is being unpacked, or SIGTERM or
 * SIGHUP at any time, remove the temporary directory and end the command
 * with 128 + the signal's number (130, 143, 129), as a shell reports a
 * process killed by it. While the debugger runs, SIGINT is the debugger's:
 * gdb uses it to stop the program it runs, so gzcoredump does not die of it;
 * a terminal's Ctrl-C reaches the debugger directly, and a SIGINT sent to
 * gzcoredump alone is passed on to the debugger. SIGTERM and SIGHUP are
 * passed on too, and end the debugger (SIGKILL after {@linkcode KILL_AFTER_MS}).
 *
 * @module
 */

import { decompress } from "../../compress/mod.ts";
import { openRegularFile } from "../../fs/mod.ts";
import { writeFileAtomic } from "../../fs/mod.ts";
import { archiveOf } from "./extract_command.ts";
import { readProgramInfo } from "../../elf/mod.ts";
import { basename } from "node:path";

/** The debugger could not be started. */
export class DebuggerError extends Error {
  /** Creates the error; the message says what was expected. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DebuggerError";
  }
}

/** The signals `debug` handles, with the exit code each one ends it with. */
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

type HandledSignal = keyof typeof EXIT_CODES;

/** How long a debugger has to end after SIGTERM or SIGHUP, before SIGKILL. */
export const KILL_AFTER_MS = 5000;

/** Options for {@linkcode debugCore}. */
export interface DebugOptions {
  /**
   * The debugger and its arguments, split on spaces; the program and the
   * core are added last.
   *
   * @default {"gdb"}
   */
  debugger?: string;
  /**
   * More arguments for the debugger, before the program and the core
   * (`-A`, split as a shell splits words, none run).
   *
   * @default {[]}
   */
  debuggerArguments?: string[];
  /**
   * Run the debugger even when the program's build-id is not the one the
   * core recorded (it would show the wrong source); a warning says so.
   *
   * @default {false}
   */
  force?: boolean;
  /**
   * Where a warning goes.
   *
   * @default {() => {}}
   */
  warn?: (message: string) => void;
}

/**
 * Runs a debugger on a stored crash: `DEBUGGER... PROGRAM CORE`.
 *
 * @param directory The store.
 * @param id A file name or a program name (its newest core).
 * @param options The debugger command (program and arguments, no shell).
 * @returns The debugger's exit code; 130, 143 or 129 when SIGINT (while
 * unpacking), SIGTERM or SIGHUP ended the command.
 * @throws {DebuggerError} When the debugger cannot be started.
 *
 * @example Usage
 * ```ts ignore
 * import { debugCore } from "./debug_command.ts";
 * await debugCore("/var/crash", "a.out", { debugger: "gdb -batch -ex bt" });
 * ```
 */
export async function debugCore(
  directory: string,
  id: string,
  options: DebugOptions = {},
): Promise<number> {
  const { path, record } = await archiveOf(directory, id);
  const program = record.metadata?.exe?.replace(/ \(deleted\)$/, "");
  const [command, ...args] = (options.debugger ?? "gdb").trim().split(/\s+/);
  const haveProgram = program !== undefined &&
    await Deno.stat(program).then((i) => i.isFile, () => false);
  const recorded = record.metadata?.build_id;
  if (haveProgram && typeof recorded === "string") {
    const found = await readProgramInfo(program!).then(
      (info) => info.buildId ?? "none",
      () => "unreadable",
    );
    if (found !== recorded) {
      const message =
        `the program '${program}' has build-id ${found}, the core recorded ${recorded}: it is not the program that crashed`;
      if (!options.force) {
        throw new DebuggerError(
          `Cannot debug ${
            basename(path)
          }: ${message}; expected the same build (--force runs the debugger anyway)`,
        );
      }
      options.warn?.(`warning: ${message}`);
    }
  }
  // Listening before the directory exists: no signal can leave it behind.
  using signals = new SignalWatch();
  const temp = await Deno.makeTempDir({ prefix: "gzcoredump-debug-" });
  try {
    await Deno.chmod(temp, 0o700);
    const core = `${temp}/core`;
    const file = await openRegularFile(path);
    // Any of the signals stops the unpacking: the gate errors the pipeline,
    // and the partial file is removed before the directory is.
    let stop: (reason: unknown) => void = () => {};
    const gate = new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        stop = (reason) => controller.error(reason);
      },
    });
    signals.onSignal = (signal) => stop(new Error(`stopped by ${signal}`));
    if (signals.received !== undefined) return EXIT_CODES[signals.received];
    try {
      await writeFileAtomic(
        core,
        decompress(file.readable, {
          label: `'${path}'`,
          size: (await file.stat()).size,
        }).pipeThrough(gate),
        // A scratch copy for the debugger: no fsync.
        { mode: 0o600, sparse: true, sync: false },
      );
    } catch (error) {
      if (signals.received !== undefined) return EXIT_CODES[signals.received];
      throw error;
    }
    if (signals.received !== undefined) return EXIT_CODES[signals.received];
    const extra = options.debuggerArguments ?? [];
    const argv = haveProgram
      ? [...args, ...extra, program!, core]
      : [...args, ...extra, "-c", core];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command!, {
        args: argv,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      throw new DebuggerError(
        `Cannot start debugger '${command}': ${
          error instanceof Deno.errors.NotFound
            ? "no such program"
            : String(error)
        }, expected gdb on PATH or --debugger CMD`,
        { cause: error },
      );
    }
    let ending: HandledSignal | undefined;
    let killer: ReturnType<typeof setTimeout> | undefined;
    signals.onSignal = (signal) => {
      if (signal === "SIGINT") {
        // A terminal's Ctrl-C went to the debugger too; pass on only a
        // SIGINT the terminal did not deliver.
        if (!inTerminalForeground()) signalChild(child, "SIGINT");
        return;
      }
      if (ending !== undefined) return;
      ending = signal;
      signalChild(child, signal);
      killer = setTimeout(() => signalChild(child, "SIGKILL"), KILL_AFTER_MS);
    };
    const status = await child.status;
    clearTimeout(killer);
    return ending === undefined ? status.code : EXIT_CODES[ending];
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
}

/**
 * Catches SIGINT, SIGTERM and SIGHUP for as long as it lives: the first one
 * is remembered, and each is handed to `onSignal`.
 */
class SignalWatch implements Disposable {
  /** The first signal received. */
  received: HandledSignal | undefined;
  /** Called for every signal received. */
  onSignal: (signal: HandledSignal) => void = () => {};
  #listeners: [HandledSignal, () => void][] = [];

  constructor() {
    for (const signal of Object.keys(EXIT_CODES) as HandledSignal[]) {
      const listener = () => {
        this.received ??= signal;
        this.onSignal(signal);
      };
      Deno.addSignalListener(signal, listener);
      this.#listeners.push([signal, listener]);
    }
  }

  [Symbol.dispose](): void {
    for (const [signal, listener] of this.#listeners) {
      Deno.removeSignalListener(signal, listener);
    }
  }
}

/** Sends a signal to the debugger, unless it has ended already. */
function signalChild(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // It has ended: nothing to stop.
  }
}

/**
 * True when this process is in the foreground process group of its
 * terminal, where a Ctrl-C reaches every process of the group, the
 * debugger included.
 */
function inTerminalForeground(): boolean {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // After "pid (comm) ": state ppid pgrp session tty_nr tpgid ...
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[4] !== "0" && fields[2] === fields[5];
  } catch {
    return false;
  }
}
