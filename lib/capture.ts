/**
 * Core capture: the kernel pipes a core dump into stdin; it is streamed
 * through the compressor into the store under a new name, with a JSON
 * sidecar of what is known about the crash.
 *
 * The core comes first. A store directory that cannot be used falls back to
 * the default one, a bad clock or time argument falls back to the current
 * time, and every such problem is returned as a warning instead of thrown.
 *
 * @module
 */

import { basename, join } from "node:path";
import { DEFAULT_DIRECTORY, type KernelFacts } from "./args.ts";
import { writeFileAtomic } from "./atomic_file.ts";
import { compressStream, type Format, formatExtension } from "./codec.ts";
import { coreBaseName } from "./names.ts";
import { CoreInspectorStream, type CoreReport } from "./core_inspector.ts";
import { buildMetadata } from "./metadata.ts";
import { type ProcessFacts, readProcessFacts } from "./proc.ts";
import { type ProgramInfo, readProgramInfo } from "./program_info.ts";
import { checkWritable, preparePrivateDirectory } from "./store.ts";
import { errorText } from "./_text.ts";

/** Options for {@linkcode captureCore}. */
export interface CaptureOptions {
  /** The store directory. */
  directory: string;
  /**
   * Where to store the core when `directory` cannot be used.
   *
   * @default {"/var/crash"}
   */
  fallbackDirectory?: string;
  /**
   * The untrusted `-a` value that names the core.
   *
   * @default {undefined}
   */
  argument?: string;
  /**
   * The container format.
   *
   * @default {"gzip"}
   */
  format?: Format;
  /**
   * Compression level; undefined uses `CompressionStream`.
   *
   * @default {undefined}
   */
  level?: number;
  /**
   * What the kernel told about the crash.
   *
   * @default {{}}
   */
  facts?: KernelFacts;
  /**
   * Problems already found (in the arguments), recorded in the sidecar.
   *
   * @default {[]}
   */
  warnings?: string[];
}

/** What {@linkcode captureCore} stored. */
export interface CaptureResult {
  /** Path of the compressed core. */
  archive: string;
  /** Path of the JSON sidecar, or undefined when it could not be written. */
  metadata: string | undefined;
  /** Bytes of core read from the input. */
  coreSize: number;
  /** Bytes of the compressed core. */
  compressedSize: number;
  /** Everything that went wrong but did not cost the core. */
  warnings: string[];
}

/**
 * Stores a core read from `input` in the store directory as
 * `Core_<time>[_<argument>].gz` (or `.zz`), plus a `.json` sidecar. Reads
 * the input to its end before any other slow work.
 *
 * @param input The core, as the kernel pipes it.
 * @param options Where and how to store it, and the kernel's facts.
 * @returns What was stored and every warning.
 * @throws {FileAccessError} Only when no store directory can hold the core.
 *
 * @example Usage
 * ```ts ignore
 * import { captureCore } from "./capture.ts";
 * const result = await captureCore(Deno.stdin.readable, {
 *   directory: "/var/crash",
 *   argument: "a.out",
 * });
 * ```
 */
export async function captureCore(
  input: ReadableStream<Uint8Array>,
  options: CaptureOptions,
): Promise<CaptureResult> {
  const started = performance.now();
  const {
    format = "gzip",
    level,
    facts = {},
    fallbackDirectory = DEFAULT_DIRECTORY,
  } = options;
  const warnings = [...(options.warnings ?? [])];
  const time = crashTime(facts, warnings);
  const directory = await chooseDirectory(
    options.directory,
    fallbackDirectory,
    warnings,
  );
  const name = coreBaseName(time, options.argument) + formatExtension(format);

  const inspector = new CoreInspectorStream();
  let compressedSize = 0;
  const compressed = input
    .pipeThrough(inspector)
    .pipeThrough(compressStream({ format, ...(level ? { level } : {}) }))
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          compressedSize += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    );
  const archive = await writeFileAtomic(join(directory, name), compressed, {
    mode: 0o600,
    unique: true,
  });
  // The core is stored and stdin is at its end: the crashed process is
  // released (or waits for us only under core_pipe_limit). Now the slower
  // work: the program's identity and /proc.
  const durationMs = Math.round(performance.now() - started);
  const report = inspector.report;
  const base = basename(archive).slice(0, -formatExtension(format).length);
  const identity = await identifyProgram(facts, report, warnings);

  let uuidFile: string | undefined;
  if (identity.program?.uuid !== undefined) {
    try {
      uuidFile = basename(
        await writeFileAtomic(
          join(directory, `${base}.txt`),
          ReadableStream.from([identity.program.uuid]),
          { mode: 0o600 },
        ),
      );
    } catch (error) {
      warnings.push(`Cannot write the .uuid copy: ${errorText(error)}`);
    }
  }
  const metadata = buildMetadata({
    time,
    report,
    facts,
    ...identity,
    ...(options.argument === undefined ? {} : { argument: options.argument }),
    stored: {
      archive: basename(archive),
      format,
      level,
      compressedSize,
      durationMs,
      uuidFile,
    },
    ...hostnameSource(facts),
    warnings,
  });
  let written: string | undefined;
  try {
    written = await writeFileAtomic(
      join(directory, `${base}.json`),
      ReadableStream.from([
        new TextEncoder().encode(JSON.stringify(metadata, null, 2) + "\n"),
      ]),
      { mode: 0o600 },
    );
  } catch (error) {
    warnings.push(`Cannot write the metadata: ${errorText(error)}`);
  }
  return {
    archive,
    metadata: written,
    coreSize: report.size,
    compressedSize,
    warnings,
  };
}

/** What {@linkcode identifyProgram} found. */
interface Identity {
  program?: ProgramInfo;
  programSource?: string;
  process?: ProcessFacts;
  exeLink?: string;
}

/**
 * Finds the crashed program: through `/proc/<pid>/exe` when the process is
 * still there and is the one that crashed (its command name matches the
 * core's), which reaches the executed file even when it was replaced,
 * deleted or lives in another mount namespace; else through `--exe`.
 * Paths inside the crashed process's root are never opened.
 */
async function identifyProgram(
  facts: KernelFacts,
  report: CoreReport,
  warnings: string[],
): Promise<Identity> {
  const identity: Identity = {};
  const comm = report.notes?.process?.comm;
  if (facts.pid !== undefined) {
    const process = await readProcessFacts(facts.pid);
    if (process !== undefined && comm !== undefined && process.comm !== comm) {
      warnings.push(
        `ignored /proc/${facts.pid}: it is '${process.comm}', the core is of '${comm}' (the pid was reused)`,
      );
    } else if (process !== undefined) {
      identity.process = process;
      const exe = `/proc/${facts.pid}/exe`;
      try {
        identity.exeLink = await Deno.readLink(exe);
      } catch {
        // A kernel thread or a process already gone has no exe link.
      }
      try {
        identity.program = await readProgramInfo(exe);
        identity.programSource = exe;
        return identity;
      } catch (error) {
        warnings.push(
          `Cannot read the program through ${exe}: ${errorText(error)}`,
        );
      }
    }
  }
  if (facts.exe !== undefined) {
    const path = facts.exe.replaceAll("!", "/");
    if (!path.startsWith("/")) {
      warnings.push(`ignored --exe '${path}': expected an absolute path`);
      return identity;
    }
    try {
      identity.program = await readProgramInfo(path);
      identity.programSource = path;
    } catch (error) {
      warnings.push(`Cannot read the program '${path}': ${errorText(error)}`);
    }
  }
  return identity;
}

function hostnameSource(facts: KernelFacts): { hostname?: string } {
  if (facts.hostname !== undefined) return {};
  try {
    return { hostname: Deno.hostname() };
  } catch {
    return {};
  }
}

/** The crash time: `%t` when given and sane, else the clock. */
function crashTime(facts: KernelFacts, warnings: string[]): Date {
  if (facts.time !== undefined) {
    const time = new Date(facts.time * 1000);
    if (!Number.isNaN(time.getTime())) return time;
    warnings.push(`ignored time ${facts.time}: out of range`);
  }
  return new Date();
}

/** The requested store directory, or the fallback with a warning. */
async function chooseDirectory(
  directory: string,
  fallback: string,
  warnings: string[],
): Promise<string> {
  try {
    await preparePrivateDirectory(directory);
    await checkWritable(directory);
    return directory;
  } catch (error) {
    if (directory === fallback) throw error;
    warnings.push(`${errorText(error)}; storing in '${fallback}' instead`);
  }
  await preparePrivateDirectory(fallback);
  return fallback;
}
