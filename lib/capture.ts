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
import { signalName } from "./signals.ts";
import { checkWritable, preparePrivateDirectory } from "./store.ts";
import { errorText } from "./_text.ts";
import denoJson from "../deno.json" with { type: "json" };

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

/** The JSON sidecar stored next to every core. */
export interface CoreMetadata {
  tool: "gzcoredump";
  version: string;
  archive: string;
  format: Format;
  level: number | null;
  time: string;
  hostname: string | null;
  pid: number | null;
  uid: number | null;
  gid: number | null;
  signal: number | null;
  signal_name: string | null;
  exe: string | null;
  argument: string | null;
  rlimit: number | null;
  dumpable: number | null;
  core_size: number;
  compressed_size: number;
  duration_ms: number;
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

  let coreSize = 0;
  let compressedSize = 0;
  const compressed = input
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          coreSize += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    )
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

  const archiveName = basename(archive);
  const metadata: CoreMetadata = {
    tool: "gzcoredump",
    version: denoJson.version,
    archive: archiveName,
    format,
    level: level ?? null,
    time: time.toISOString(),
    hostname: facts.hostname ?? localHostname(),
    pid: facts.pid ?? null,
    uid: facts.uid ?? null,
    gid: facts.gid ?? null,
    signal: facts.signal ?? null,
    signal_name: facts.signal === undefined ? null : signalName(facts.signal),
    exe: facts.exe === undefined ? null : facts.exe.replaceAll("!", "/"),
    argument: options.argument ?? null,
    rlimit: facts.rlimit ?? null,
    dumpable: facts.dumpable ?? null,
    core_size: coreSize,
    compressed_size: compressedSize,
    duration_ms: Math.round(performance.now() - started),
    warnings,
  };
  const metadataPath = join(
    directory,
    archiveName.slice(0, -formatExtension(format).length) + ".json",
  );
  let written: string | undefined;
  try {
    written = await writeFileAtomic(
      metadataPath,
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
    coreSize,
    compressedSize,
    warnings,
  };
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

function localHostname(): string | null {
  try {
    return Deno.hostname();
  } catch {
    return null;
  }
}
