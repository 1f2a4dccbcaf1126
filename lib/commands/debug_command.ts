/**
 * `gzcoredump debug ID [--debugger CMD]`: unpacks a stored core to a private
 * temporary file and runs gdb (or CMD, as coredumpctl's `--debugger`) on the
 * program and the core; the file is removed afterwards.
 *
 * @module
 */

import { decompress } from "../codec.ts";
import { openRegularFile } from "../program_info.ts";
import { writeFileAtomic } from "../atomic_file.ts";
import { archiveOf } from "./extract_command.ts";

/** The debugger could not be started. */
export class DebuggerError extends Error {
  /** Creates the error; the message says what was expected. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DebuggerError";
  }
}

/**
 * Runs a debugger on a stored crash: `DEBUGGER... PROGRAM CORE`.
 *
 * @param directory The store.
 * @param id A file name or a program name (its newest core).
 * @param options The debugger command (program and arguments, no shell).
 * @returns The debugger's exit code.
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
  options: { debugger?: string } = {},
): Promise<number> {
  const { path, record } = await archiveOf(directory, id);
  const program = record.metadata?.exe?.replace(/ \(deleted\)$/, "");
  const [command, ...args] = (options.debugger ?? "gdb").trim().split(/\s+/);
  const temp = await Deno.makeTempDir({ prefix: "gzcoredump-debug-" });
  try {
    await Deno.chmod(temp, 0o700);
    const core = `${temp}/core`;
    const file = await openRegularFile(path);
    await writeFileAtomic(
      core,
      decompress(file.readable, {
        label: `'${path}'`,
        size: (await file.stat()).size,
        transient: true,
      }),
      // A scratch copy for the debugger: no fsync.
      { mode: 0o600, sparse: true, sync: false },
    );
    const haveProgram = program !== undefined &&
      await Deno.stat(program).then((i) => i.isFile, () => false);
    const argv = haveProgram ? [...args, program, core] : [...args, "-c", core];
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
    return (await child.status).code;
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
}
