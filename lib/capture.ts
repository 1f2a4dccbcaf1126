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
import {
  DEFAULT_DIRECTORY,
  type KernelFacts,
  type StoreOptions,
} from "./args.ts";
import { writeFileAtomic } from "./atomic_file.ts";
import type { FilePatch } from "./atomic_file.ts";
import { compress, type Format, formatExtension } from "./codec.ts";
import { coreBaseName } from "./names.ts";
import { CoreInspectorStream, type CoreReport } from "./core_inspector.ts";
import { buildMetadata } from "./metadata.ts";
import { type ProcessFacts, readProcessFacts } from "./proc.ts";
import { type ProgramInfo, readProgramInfo } from "./program_info.ts";
import { countCrash } from "./rate_limit.ts";
import {
  checkWritable,
  enforceLimits,
  fileSystemSpace,
  listStore,
  preparePrivateDirectory,
  removeStaleTemporaries,
  withStoreLock,
} from "./store.ts";
import { resolveSize, type SizeSpec } from "./units.ts";
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
   * Worker threads for compression.
   *
   * @default {navigator.hardwareConcurrency}
   */
  jobs?: number;
  /**
   * What the kernel told about the crash.
   *
   * @default {{}}
   */
  facts?: KernelFacts;
  /**
   * Store limits, policies and hooks; {@linkcode DEFAULT_STORE} fills gaps.
   *
   * @default {{}}
   */
  store?: StoreOptions;
  /**
   * Problems already found (in the arguments), recorded in the sidecar.
   *
   * @default {[]}
   */
  warnings?: string[];
}

/**
 * The store's defaults, in the spirit of systemd-coredump: the store may use
 * 10% of its file system and must leave 15% free (each at most 4 GiB), keeps
 * at most 100 cores, ages them out after 14 days, and stores at most 5 cores
 * per program per hour. There is no size limit per core unless given, and
 * the crashed process's RLIMIT_CORE is honoured.
 */
export const DEFAULT_STORE = {
  maxUse: { percent: 10 },
  maxUseCap: 4 * 1024 ** 3,
  keepFree: { percent: 15 },
  keepFreeCap: 4 * 1024 ** 3,
  maxCount: 100,
  maxAgeMs: 14 * 86_400_000,
  rate: { count: 5, periodMs: 3_600_000 },
} as const;

/** Cores smaller than a page are not worth storing (RLIMIT_CORE 1 and 0). */
const PAGE = 4096;

/** What {@linkcode captureCore} stored. */
export interface CaptureResult {
  /** Path of the compressed core; undefined when only metadata was kept. */
  archive: string | undefined;
  /** Why the core was not stored, or was cut; undefined when whole. */
  reason: string | undefined;
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
    store = {},
    fallbackDirectory = DEFAULT_DIRECTORY,
  } = options;
  const warnings = [...(options.warnings ?? [])];
  const time = crashTime(facts, warnings);
  const directory = await chooseDirectory(
    options.directory,
    fallbackDirectory,
    warnings,
  );
  const base = coreBaseName(time, options.argument);
  const extension = formatExtension(format);
  // A set-id process's core stays root-only whatever --mode says.
  const mode = facts.dumpable === 2 ? 0o600 : store.mode ?? 0o600;
  if (store.before) await runHook(store.before, [], warnings);

  // Policy, under the lock: clean up, then decide whether to store.
  const space = await fileSystemSpace(directory);
  const limits = resolveLimits(store, space.total);
  let reason = await withStoreLock(directory, async () => {
    const stale = await removeStaleTemporaries(directory);
    if (stale.length > 0) {
      warnings.push(
        `removed ${stale.length} stale temporary file(s) of an earlier run`,
      );
    }
    const made = await enforceLimits(directory, { ...limits, reserve: 1 }, {
      now: time,
    });
    for (const gone of made) {
      warnings.push(`removed ${gone.base}: ${gone.reason}`);
    }
    if (
      !store.ignoreRlimit && facts.rlimit !== undefined && facts.rlimit < PAGE
    ) {
      return `RLIMIT_CORE of the crashed process is ${facts.rlimit} bytes, below one page: metadata only (--ignore-rlimit stores it anyway)`;
    }
    const { free } = await fileSystemSpace(directory);
    if (free < limits.keepFree) {
      return `only ${free} bytes free, --keep-free is ${limits.keepFree}: metadata only`;
    }
    const rate = store.rate ?? DEFAULT_STORE.rate;
    const program = facts.exe ?? options.argument ?? "unknown";
    const verdict = await countCrash(directory, program, { rate, now: time });
    if (!verdict.allowed) {
      return `more than ${rate.count} cores of '${
        program.replaceAll("!", "/")
      }' within ${rate.periodMs / 60_000} minutes (--rate): metadata only`;
    }
    return undefined;
  });

  const cut = Math.min(
    store.maxSize ?? Infinity,
    store.ignoreRlimit || facts.rlimit === undefined ? Infinity : facts.rlimit,
  );
  const limiter = new LimitStream(reason === undefined ? cut : Infinity);
  const inspector = new CoreInspectorStream();
  let archive: string | undefined;
  let compressedSize = 0;
  let patch: FilePatch | undefined;
  if (reason === undefined) {
    const compressed = compress(
      input.pipeThrough(limiter).pipeThrough(inspector),
      {
        format,
        ...(level === undefined ? {} : { level }),
        ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
        // The chunk index for parallel decompression, sized by the core's
        // own headers, written over the header at the end.
        index: {
          expectedSize: () => {
            const declared = inspector.declaredSize;
            return declared === undefined ? undefined : Math.min(declared, cut);
          },
          onPatch: (p) => patch = p,
        },
      },
    )
      .pipeThrough(
        spaceWatch(directory, limits.keepFree, (n) => compressedSize += n),
      );
    try {
      archive = await writeFileAtomic(
        join(directory, base + extension),
        compressed,
        { mode, unique: true, amend: () => patch },
      );
    } catch (error) {
      if (!(error instanceof KeepFreeError)) throw error;
      reason = `${error.message}: the partial core was removed, metadata only`;
    }
    if (limiter.cut) {
      reason = `cut at ${cut} bytes (${
        cut === store.maxSize
          ? "--max-size"
          : "RLIMIT_CORE of the crashed process"
      }); reading stopped there`;
    }
  } else {
    // Metadata only: read what the notes need, then let the process go.
    await input.pipeThrough(inspector).pipeTo(new WritableStream());
  }
  // stdin is at its end (or closed): the crashed process is released (or
  // waits for us only under core_pipe_limit). Now the slower work.
  const durationMs = Math.round(performance.now() - started);
  const report = inspector.report;
  if (archive !== undefined && limiter.cut) report.truncated = true;
  const name = archive === undefined
    ? await freeBase(directory, base)
    : basename(archive).slice(0, -extension.length);
  const identity = await identifyProgram(facts, report, warnings);

  let uuidFile: string | undefined;
  if (identity.program?.uuid !== undefined) {
    try {
      uuidFile = basename(
        await writeFileAtomic(
          join(directory, `${name}.txt`),
          ReadableStream.from([identity.program.uuid]),
          { mode },
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
      archive: archive === undefined ? null : basename(archive),
      format,
      level,
      compressedSize: archive === undefined ? null : compressedSize,
      durationMs,
      uuidFile,
      reason,
    },
    ...hostnameSource(facts),
    warnings,
  });
  let written: string | undefined;
  try {
    written = await writeFileAtomic(
      join(directory, `${name}.json`),
      ReadableStream.from([
        new TextEncoder().encode(JSON.stringify(metadata, null, 2) + "\n"),
      ]),
      { mode },
    );
  } catch (error) {
    warnings.push(`Cannot write the metadata: ${errorText(error)}`);
  }
  // Now that the new core is in, bring the store back within its limits.
  const removed = await withStoreLock(
    directory,
    () => enforceLimits(directory, limits, { keep: name, now: time }),
  );
  for (const gone of removed) {
    warnings.push(`removed ${gone.base}: ${gone.reason}`);
  }
  if (store.after) {
    await runHook(store.after, [archive ?? written ?? ""], warnings);
  }
  return {
    archive,
    reason,
    metadata: written,
    coreSize: report.size,
    compressedSize,
    warnings,
  };
}

/** The store limits with defaults, resolved against the file system. */
function resolveLimits(store: StoreOptions, total: number) {
  const cap = (spec: SizeSpec | undefined, fallback: SizeSpec, max: number) =>
    spec === undefined
      ? Math.min(resolveSize(fallback, total), max)
      : resolveSize(spec, total);
  return {
    maxUse: cap(store.maxUse, DEFAULT_STORE.maxUse, DEFAULT_STORE.maxUseCap),
    keepFree: cap(
      store.keepFree,
      DEFAULT_STORE.keepFree,
      DEFAULT_STORE.keepFreeCap,
    ),
    maxCount: store.maxCount ?? DEFAULT_STORE.maxCount,
    maxAgeMs: store.maxAgeMs ?? DEFAULT_STORE.maxAgeMs,
  };
}

/** A base name no entry uses yet, for metadata without an archive. */
async function freeBase(directory: string, base: string): Promise<string> {
  const taken = new Set((await listStore(directory)).map((e) => e.base));
  if (!taken.has(base)) return base;
  for (let n = 2;; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** Passes at most `limit` bytes, then ends the stream (and stops reading). */
class LimitStream extends TransformStream<Uint8Array, Uint8Array> {
  #seen = 0;
  #cut = false;
  /** Creates the limiter. */
  constructor(limit: number) {
    super({
      transform: (chunk, controller) => {
        const room = limit - this.#seen;
        if (chunk.length <= room) {
          this.#seen += chunk.length;
          controller.enqueue(chunk);
          return;
        }
        if (room > 0) controller.enqueue(chunk.subarray(0, room));
        this.#seen = limit;
        this.#cut = true;
        controller.terminate();
      },
    });
  }
  /** True when input was cut at the limit. */
  get cut(): boolean {
    return this.#cut;
  }
}

/** Free space fell under --keep-free while the core was being written. */
class KeepFreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeepFreeError";
  }
}

/** Counts output bytes and stops the capture when free space runs low. */
function spaceWatch(
  directory: string,
  keepFree: number,
  count: (bytes: number) => void,
): TransformStream<Uint8Array, Uint8Array> {
  let sinceCheck = 0;
  return new TransformStream({
    async transform(chunk, controller) {
      count(chunk.length);
      sinceCheck += chunk.length;
      if (sinceCheck >= 4 << 20) {
        sinceCheck = 0;
        const { free } = await fileSystemSpace(directory);
        if (free < keepFree) {
          throw new KeepFreeError(
            `free space fell to ${free} bytes, under --keep-free ${keepFree}, while storing`,
          );
        }
      }
      controller.enqueue(chunk);
    },
  });
}

/** Runs a hook (argv, no shell) with an empty environment, for at most 30 s. */
async function runHook(
  argv: string[],
  extra: string[],
  warnings: string[],
): Promise<void> {
  const [program, ...args] = argv;
  try {
    const child = new Deno.Command(program!, {
      args: [...args, ...extra],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      clearEnv: true,
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const status = await child.status;
    clearTimeout(timer);
    if (!status.success) {
      warnings.push(`hook '${argv.join(" ")}' exited with ${status.code}`);
    }
  } catch (error) {
    warnings.push(`Cannot run hook '${argv.join(" ")}': ${errorText(error)}`);
  }
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
    // Trust /proc/<pid> only for the process that crashed: same command
    // name as the core's, started before the crash.
    const crashed = facts.time === undefined
      ? undefined
      : new Date(facts.time * 1000);
    if (process !== undefined && comm !== undefined && process.comm !== comm) {
      warnings.push(
        `ignored /proc/${facts.pid}: it is '${process.comm}', the core is of '${comm}' (the pid was reused)`,
      );
    } else if (
      process?.startTime !== undefined && crashed !== undefined &&
      process.startTime.getTime() > crashed.getTime() + 2000
    ) {
      warnings.push(
        `ignored /proc/${facts.pid}: it started at ${process.startTime.toISOString()}, after the crash at ${crashed.toISOString()} (the pid was reused)`,
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
        warnings.push(`${errorText(error)} (the program, through ${exe})`);
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
      warnings.push(`${errorText(error)} (the program, from --exe)`);
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
