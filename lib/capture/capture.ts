/**
 * Core capture: the kernel pipes a core dump into stdin; it is streamed
 * through the compressor into the store, with a JSON sidecar of what is
 * known about the crash.
 *
 * A capture runs in phases, and the crash's record exists from the first:
 * 1. **Admit**, under the store lock: tidy what dead captures left, decide
 *    whether the core may be stored (policy, `store_policy.ts`), remove what
 *    must make room, take a name, and write the sidecar (reserved room,
 *    `reservation.ts`) saying the capture is under way.
 * 2. **Stream**: the core goes through the compressor to a hidden file,
 *    published when complete; the claimed room of `--max-use` grows in
 *    steps, and a core that cannot have more is cut there. A core kept as
 *    metadata only, or whose archive could not be written, is still read to
 *    its end for its notes.
 * 3. **Describe**: the program's identity, the `.uuid` copy, the sidecar's
 *    final record. Then the `--after` hook.
 *
 * Problems that do not cost the core (a bad argument, a damaged state file,
 * a lock that cannot be had, a failing worker) are warnings, recorded in
 * the sidecar. A signal (SIGTERM, SIGINT, SIGHUP) stops the capture: the
 * temporary file goes, the record says so.
 *
 * @module
 */

import { basename, join } from "node:path";
import { DEFAULT_DIRECTORY, type StoreOptions } from "../store/mod.ts";
import type { KernelFacts } from "../process/mod.ts";
import { writeFileAtomic } from "../fs/mod.ts";
import {
  DEFAULT_PARALLEL_LEVEL,
  type Format,
  formatExtension,
} from "../compress/mod.ts";
import { coreBaseName } from "../store/mod.ts";
import { CoreInspectorStream, type CoreReport } from "../elf/mod.ts";
import { runHook } from "./hooks.ts";
import {
  buildMetadata,
  type CaptureRecord,
  type MetadataSources,
} from "../store/mod.ts";
import { parallelCompress } from "../compress/mod.ts";
import { type ProcessFacts, readProcessFacts } from "../process/mod.ts";
import { type ProgramInfo, readProgramInfo } from "../elf/mod.ts";
import { readRateState, writeRateState } from "../store/mod.ts";
import { RESERVATION_BYTES, reserveSidecar } from "../store/mod.ts";
import type { SidecarReservation } from "../store/mod.ts";
import {
  checkWritable,
  fileSystemSpace,
  preparePrivateDirectory,
  removeFiles,
  withStoreLock,
} from "../store/mod.ts";
import {
  readLedger,
  readSidecar,
  reanchorEntries,
  rewriteSidecar,
} from "../store/mod.ts";
import type { LedgerEntry } from "../store/mod.ts";
import {
  admit,
  claimStep,
  extendClaim,
  type PolicyLimits,
  type Removal,
} from "../store/mod.ts";
import { compact, resolveSize, type SizeSpec } from "../util/mod.ts";
import { type ClockReading, readClocks, selfIdentity } from "../process/mod.ts";
import { errorText, printable } from "../util/mod.ts";

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
   * Compression level.
   *
   * @default {5}
   */
  level?: number;
  /**
   * Worker threads for compression; 1 compresses in this thread. At most
   * one per core is used.
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
  /**
   * Aborted by a signal: the capture stops, removes its temporary file and
   * finishes the record; its reason names the signal (a string reason).
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Called once the core has been read to its end (or reading stopped) and
   * `/proc/<pid>` has been read: the input may be closed then, which lets
   * the kernel release the crashed process (under `core_pipe_limit` it waits
   * for the helper to close the pipe) while the compressor finishes, the
   * archive is synced and the record written.
   *
   * @default {undefined}
   */
  release?: () => void;
}

/**
 * The store's defaults, in the spirit of systemd-coredump: the store may use
 * 10% of its file system and must leave 15% free (each at most 4 GiB), keeps
 * at most 100 cores and 1000 records of metadata only, ages them out after
 * 14 days, and stores at most 5 cores per program per hour. There is no size
 * limit per core unless given, and the crashed process's RLIMIT_CORE is
 * honoured.
 */
export const DEFAULT_STORE = {
  maxUse: { percent: 10 },
  maxUseCap: 4 * 1024 ** 3,
  keepFree: { percent: 15 },
  keepFreeCap: 4 * 1024 ** 3,
  maxCount: 100,
  maxRecords: 1000,
  maxAgeMs: 14 * 86_400_000,
  rate: { count: 5, periodMs: 3_600_000 },
} as const;

/** Cores smaller than a page are not worth storing (RLIMIT_CORE 1 and 0). */
const PAGE = 4096;
/** Most compression workers of a capture, whatever -j says. */
const MAX_CAPTURE_JOBS = 16;
/** Room kept for the `.uuid` copy beside the archive. */
const UUID_ROOM = 8192;
/** Free space is checked every this many bytes written. */
const SPACE_CHECK_BYTES = 4 << 20;

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
  /** True when the core was to be stored but could not be written. */
  lost: boolean;
  /** The signal that interrupted the capture, if one did. */
  interrupted?: string;
  /** Everything that went wrong but did not cost the core. */
  warnings: string[];
}

/** Everything the phases share. */
interface Capture {
  options: CaptureOptions;
  directory: string;
  time: Date;
  format: Format;
  level: number;
  jobs: number;
  mode: number;
  facts: KernelFacts;
  store: StoreOptions;
  limits: PolicyLimits;
  rateKey: string;
  warnings: string[];
  started: number;
}

/** What admission decided. */
interface Admitted {
  base: string;
  reservation: SidecarReservation;
  /** Why only metadata is kept; undefined when the core is stored. */
  reason?: string;
  record: CaptureRecord;
}

/**
 * Stores a core read from `input` in the store directory as
 * `Core_<time>[_<argument>].gz` (or `.zz`), plus a `.json` sidecar that is
 * written before the core and completed after it.
 *
 * @param input The core, as the kernel pipes it.
 * @param options Where and how to store it, and the kernel's facts.
 * @returns What was stored and every warning.
 * @throws {FileAccessError} Only when no store directory can hold even the
 * crash's record.
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
  const capture = await prepare(options);
  const reader = openReader(input);
  const stopReading = () => void reader.cancel().catch(() => {});
  options.signal?.addEventListener("abort", stopReading, { once: true });
  try {
    if (capture.store.before) {
      const problem = await runHook(capture.store.before, []);
      if (problem !== undefined) capture.warnings.push(problem);
    }
    // The first bytes, before any decision: an empty input is no core.
    const head = options.signal?.aborted
      ? undefined
      : await reader.read(new Uint8Array(READ_SIZE)).catch(() => undefined);
    const first = head?.length ? head : undefined;
    const inspector = new CoreInspectorStream();
    // Once the core is read: who crashed (while /proc/<pid> is there),
    // then let the crashed process go.
    let identity: Identity = {};
    const source = coreSource(reader, first, inspector, async () => {
      if (!options.signal?.aborted) {
        identity = await identifyProgram(
          capture.facts,
          inspector.report,
          capture.warnings,
        );
      }
      options.release?.();
    });
    const admitted = await admitCapture(capture, first, source);
    const outcome = admitted.reason === undefined && !options.signal?.aborted
      ? await streamArchive(capture, admitted, source, inspector)
      : await readForNotes(capture, source);
    const reason = interruption(options.signal, outcome.archive) ??
      outcome.reason ?? source.error ?? admitted.reason;
    if (source.error !== undefined) capture.warnings.push(source.error);
    await source.stop();
    return await describe(capture, admitted, {
      ...outcome,
      reason,
      report: inspector.report,
      identity,
    });
  } catch (error) {
    throw new CaptureFailedError(error, capture.warnings);
  } finally {
    options.signal?.removeEventListener("abort", stopReading);
    stopReading();
  }
}

/**
 * No store could hold even the crash's record. The message is the cause's;
 * the warnings gathered until then come along, for the kernel log.
 */
export class CaptureFailedError extends Error {
  /** Everything that went wrong before. */
  readonly warnings: string[];
  /** Creates the error from its cause. */
  constructor(cause: unknown, warnings: string[]) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "CaptureFailedError";
    this.warnings = warnings;
  }
}

/** The signal's reason as the record says it, or undefined. */
function interruption(
  signal: AbortSignal | undefined,
  archive: string | undefined,
): string | undefined {
  if (!signal?.aborted) return undefined;
  const name = String(signal.reason);
  return archive === undefined
    ? `interrupted by ${name} while capturing: the partial core was removed, metadata only`
    : `interrupted by ${name} after the archive was stored`;
}

/** Resolves everything the capture needs before it reads the core. */
async function prepare(options: CaptureOptions): Promise<Capture> {
  const warnings = [...(options.warnings ?? [])];
  const { format = "gzip", facts = {}, store = {} } = options;
  const time = crashTime(facts, warnings);
  const directory = await chooseDirectory(
    options.directory,
    options.fallbackDirectory ?? DEFAULT_DIRECTORY,
    warnings,
  );
  const cpus = navigator.hardwareConcurrency || 1;
  const cap = Math.min(cpus, MAX_CAPTURE_JOBS);
  let jobs = options.jobs ?? cap;
  if (jobs > cap) {
    warnings.push(
      `used ${cap} compression threads, not ${jobs}: at most one per core (${cpus}) in capture mode`,
    );
    jobs = cap;
  }
  const space = await fileSystemSpace(directory);
  return {
    options,
    directory,
    time,
    format,
    level: options.level ?? DEFAULT_PARALLEL_LEVEL,
    jobs,
    // A set-id process's core stays root-only whatever --mode says.
    mode: facts.dumpable === 2 ? 0o600 : store.mode ?? 0o600,
    facts,
    store,
    limits: resolveLimits(store, space.total),
    rateKey: rateKey(facts, options.argument),
    warnings,
    started: performance.now(),
  };
}

/**
 * The program as the rate limit counts it: `%E`, else the executable of
 * `/proc/<pid>`, else `-a`.
 */
function rateKey(facts: KernelFacts, argument: string | undefined): string {
  if (facts.exe !== undefined) return facts.exe.replaceAll("!", "/");
  if (facts.pid !== undefined) {
    try {
      return Deno.readLinkSync(`/proc/${facts.pid}/exe`)
        .replace(/ \(deleted\)$/, "");
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return argument ?? "unknown";
}

/** The store limits with defaults, resolved against the file system. */
function resolveLimits(store: StoreOptions, total: number): PolicyLimits {
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
    maxRecords: store.maxRecords ?? DEFAULT_STORE.maxRecords,
    maxAgeMs: store.maxAgeMs ?? DEFAULT_STORE.maxAgeMs,
    rate: store.rate ?? DEFAULT_STORE.rate,
  };
}

/** Bytes asked for per read of the core; the pipe gives what it holds. */
const READ_SIZE = 1 << 20;

/** Reads of the input, into buffers the caller gives where it allows it. */
interface InputReader {
  /**
   * Reads into `into` (its buffer moves into the returned view) when the
   * input is a byte stream, else returns the input's own next chunk; an
   * empty view (over `into`'s moved memory, for a BYOB read) at the end.
   */
  read(into: Uint8Array): Promise<Uint8Array>;
  cancel(): Promise<void>;
}

/** BYOB reads where the input is a byte stream (stdin is), else chunks. */
function openReader(input: ReadableStream<Uint8Array>): InputReader {
  let byob: ReadableStreamBYOBReader | undefined;
  let plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = input.getReader({ mode: "byob" });
  } catch {
    plain = input.getReader();
  }
  return {
    async read(into) {
      const result = byob === undefined
        ? await plain!.read()
        : await byob.read(into);
      return result.value ?? new Uint8Array(0);
    },
    cancel: () => (byob ?? plain)!.cancel(),
  };
}

/** The core's bytes as the capture takes them: counted, inspected, cut. */
interface CoreSource {
  /**
   * The next bytes, read into `into` where the input allows it (the
   * returned view is then over `into`'s memory), or undefined at the end
   * (or the cut).
   */
  read(into?: Uint8Array): Promise<Uint8Array | undefined>;
  /** Most bytes taken; past it the core is cut and reading stops. */
  limit: number;
  /** True when the input was cut at the limit. */
  readonly cut: boolean;
  /** Stops reading (after the end hook): the crashed process is released. */
  stop(): Promise<void>;
  /**
   * At the end of a read into a caller's buffer: that memory, moved, as an
   * empty view (a byte stream's pending read is answered with it).
   */
  readonly endView: Uint8Array | undefined;
  /** Why reading stopped before the end of the input, if it failed. */
  readonly error: string | undefined;
}

/**
 * The core as the capture reads it. `onEnd` runs once, when the input ends
 * or reading stops, before the input is let go.
 */
function coreSource(
  reader: InputReader,
  first: Uint8Array | undefined,
  inspector: CoreInspectorStream,
  onEnd: () => Promise<void>,
): CoreSource {
  let pending = first;
  let seen = 0;
  let done = false;
  let cut = false;
  let ended: Promise<void> | undefined;
  /** A buffer for reads without one of the caller's (metadata only). */
  let scratch: Uint8Array | undefined;
  let endView: Uint8Array | undefined;
  let readError: string | undefined;
  const end = () => {
    done = true;
    ended ??= onEnd().finally(() => reader.cancel().catch(() => {}));
    return ended;
  };
  const source: CoreSource = {
    limit: Infinity,
    get cut() {
      return cut;
    },
    stop: end,
    get endView() {
      return endView;
    },
    get error() {
      return readError;
    },
    async read(into) {
      if (first === undefined) await end();
      while (!done) {
        let chunk = pending;
        pending = undefined;
        if (chunk === undefined) {
          const buffer = into ?? scratch ?? new Uint8Array(READ_SIZE);
          chunk = await reader.read(buffer).catch((error) => {
            readError = `reading the core failed after ${seen} bytes: ${
              errorText(error)
            }`;
            return new Uint8Array(0);
          });
          if (chunk.length === 0) {
            if (into !== undefined && chunk.buffer !== into.buffer) {
              endView = chunk;
            }
            await end();
            return undefined;
          }
          if (into === undefined) {
            scratch = new Uint8Array(chunk.buffer, 0, READ_SIZE);
          }
        } else if (into !== undefined && chunk.length <= into.length) {
          into.set(chunk);
          chunk = into.subarray(0, chunk.length);
        }
        const room = source.limit - seen;
        if (chunk.length > room) {
          chunk = chunk.subarray(0, Math.max(0, room));
          cut = true;
        }
        seen += chunk.length;
        inspector.inspect(chunk);
        if (cut) await end();
        if (chunk.length > 0) return chunk;
      }
      return undefined;
    },
  };
  return source;
}

/**
 * Phase 1, under the store lock: tidy, decide, remove, name, reserve the
 * sidecar, and count the core for the rate limit when it is stored.
 */
async function admitCapture(
  capture: Capture,
  first: Uint8Array | undefined,
  source: CoreSource,
): Promise<Admitted> {
  const { directory, facts, store, limits, warnings } = capture;
  let refused: string | undefined;
  if (first === undefined) {
    refused = "empty core (0 bytes): nothing to store, metadata only";
  } else if (
    !store.ignoreRlimit && facts.rlimit !== undefined && facts.rlimit < PAGE
  ) {
    refused =
      `RLIMIT_CORE of the crashed process is ${facts.rlimit} bytes, below one page: metadata only (--ignore-rlimit stores it anyway)`;
  }
  const admitted = await withStoreLock(directory, async () => {
    const clocks = readClocks();
    const ledger = await readLedger(directory, { clocks, warnings });
    if (ledger.removedTemporaries.length > 0) {
      warnings.push(
        `removed ${ledger.removedTemporaries.length} temporary file(s) of captures that ended`,
      );
    }
    for (const base of ledger.interrupted) {
      warnings.push(`marked ${base} interrupted: its capture had ended`);
    }
    const read = await readRateState(directory, {
      now: clocks.wallMs,
      warnings,
    });
    // A core counted when it was admitted but never stored (its capture was
    // killed) counts no more.
    const unstored = new Set(
      ledger.entries.filter((e) => !e.live && !e.archive).map((e) => e.base),
    );
    const history = read.filter((r) => !unstored.has(r.base));
    const { free } = await fileSystemSpace(directory);
    const verdict = admit(ledger.entries, {
      ...compact({ refused }),
      rateKey: capture.rateKey,
      sidecarBytes: RESERVATION_BYTES + UUID_ROOM,
      free,
      clocks,
      history,
    }, limits);
    await removeEntries(directory, ledger.entries, verdict.remove, warnings);
    await reanchorEntries(
      directory,
      // A live capture's record is its owner's to write.
      ledger.entries.filter((e) =>
        !e.live && verdict.reanchor.includes(e.base)
      ),
      clocks,
    );
    const record: CaptureRecord = {
      state: "capturing",
      seq: verdict.seq,
      stored_at: new Date(clocks.wallMs).toISOString(),
      stored_wall_ms: clocks.wallMs,
      uptime_ms: clocks.uptimeMs,
      boot_id: clocks.bootId,
      rate_key: capture.rateKey,
      owner: (({ pid, startTicks, bootId }) => ({
        pid,
        start_ticks: startTicks,
        boot_id: bootId,
      }))(selfIdentity()),
      claim: verdict.claim + RESERVATION_BYTES + UUID_ROOM,
      protects: verdict.protects,
    };
    const taken = new Set(ledger.entries.map((e) => e.base));
    const { base, reservation } = await reserveName(
      capture,
      taken,
      record,
      verdict.reason,
    );
    if (verdict.reason === undefined) {
      history.push({ key: capture.rateKey, base, at: clocks.wallMs });
    }
    if (verdict.reason === undefined || history.length !== read.length) {
      await writeRateState(directory, history, {
        now: clocks.wallMs,
        warnings,
      });
    }
    return {
      base,
      reservation,
      ...compact({ reason: verdict.reason }),
      record,
    };
  }, { warnings });
  if (admitted.reason === undefined) {
    const cut = Math.min(
      store.maxSize ?? Infinity,
      store.ignoreRlimit || facts.rlimit === undefined
        ? Infinity
        : facts.rlimit,
    );
    source.limit = cut;
  }
  return admitted;
}

/**
 * Removes what the policy gave up, saying each in the warnings. A core
 * removed for room keeps its crash's record, which then says so.
 */
async function removeEntries(
  directory: string,
  entries: readonly LedgerEntry[],
  removals: readonly Removal[],
  warnings: string[],
): Promise<void> {
  for (const removal of removals) {
    const item = entries.find((e) => e.base === removal.base);
    if (item === undefined) continue;
    const { entry, metadata } = item;
    const keep = removal.keepRecord === true &&
      entry.metadata !== undefined && metadata !== undefined;
    await removeFiles(
      directory,
      keep ? entry.files.filter((f) => f !== entry.metadata) : entry.files,
    );
    if (keep) {
      await rewriteSidecar(join(directory, entry.metadata!), {
        ...metadata,
        archive: null,
        uuid_file: null,
        compressed_size: null,
        reason: `the core was removed at ${
          new Date().toISOString()
        } to make room: ${removal.reason}`,
      }).catch(async () => await removeFiles(directory, [entry.metadata!]));
    }
    warnings.push(`removed ${removal.base}: ${removal.reason}`);
  }
}

/**
 * Takes the first free name `Core_<time>[_<arg>][-N]` by creating its
 * sidecar exclusively: the name is this crash's, whatever runs beside it.
 */
async function reserveName(
  capture: Capture,
  taken: ReadonlySet<string>,
  record: CaptureRecord,
  reason: string | undefined,
): Promise<{ base: string; reservation: SidecarReservation }> {
  const stem = coreBaseName(capture.time, capture.options.argument);
  const extension = formatExtension(capture.format);
  for (let n = 1; n < 10_000; n++) {
    const base = n === 1 ? stem : `${stem}-${n}`;
    if (taken.has(base)) continue;
    // Anything at one of the entry's names (a directory, a link planted in
    // the store) makes the name unusable.
    const names = [".gz", ".zz", ".txt", ".json"].map((e) => base + e);
    if (await anyExists(capture.directory, names)) continue;
    const first = metadataOf(capture, {
      archive: reason === undefined ? base + extension : null,
      reason: reason ?? "being captured",
      capture: record,
      report: emptyReport(),
    });
    try {
      const reservation = await reserveSidecar(
        join(capture.directory, `${base}.json`),
        first,
        { mode: capture.mode },
      );
      return { base, reservation };
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw error;
    }
  }
  throw new Error(
    `Cannot name the core in '${capture.directory}': 10000 names of '${stem}' are taken`,
  );
}

/** What is known of a core before any of it is read (a record under way). */
function emptyReport(): CoreReport {
  return { size: 0, programs: [], modules: [], truncated: false };
}

/** True when any of the names exists in the directory, as anything. */
async function anyExists(
  directory: string,
  names: readonly string[],
): Promise<boolean> {
  for (const name of names) {
    const found = await Deno.lstat(join(directory, name)).then(
      () => true,
      (error) => !(error instanceof Deno.errors.NotFound),
    );
    if (found) return true;
  }
  return false;
}

/** The sidecar's record from what is known so far. */
function metadataOf(
  capture: Capture,
  parts: {
    archive: string | null;
    reason: string | undefined;
    capture: CaptureRecord;
    report: CoreReport;
    compressedSize?: number | null;
    identity?: Identity;
    uuidFile?: string;
  },
): ReturnType<typeof buildMetadata> {
  const sources: MetadataSources = {
    time: capture.time,
    report: parts.report,
    facts: capture.facts,
    ...parts.identity,
    ...compact({ argument: capture.options.argument }),
    stored: {
      archive: parts.archive,
      format: capture.format,
      level: capture.level,
      compressedSize: parts.compressedSize ?? null,
      durationMs: Math.round(performance.now() - capture.started),
      uuidFile: parts.uuidFile,
      reason: parts.reason,
    },
    ...hostnameSource(capture.facts),
    capture: parts.capture,
    warnings: capture.warnings,
  };
  return buildMetadata(sources);
}

/** What streaming (or reading for the notes) came to. */
interface Outcome {
  archive?: string | undefined;
  compressedSize: number;
  reason?: string | undefined;
  lost: boolean;
}

/** Metadata only: read the core to its end for its notes and size. */
async function readForNotes(
  capture: Capture,
  source: CoreSource,
): Promise<Outcome> {
  if (!capture.options.signal?.aborted) {
    while (await source.read() !== undefined) {
      // The inspector sees every byte.
    }
  }
  return { compressedSize: 0, lost: false };
}

/** Free space fell under --keep-free while the core was being written. */
class KeepFreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeepFreeError";
  }
}

/** The signal stopped the capture. */
class InterruptedError extends Error {
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
    this.name = "InterruptedError";
  }
}

/**
 * Phase 2: the core through the compressor into the archive, within the
 * claimed room; an archive that cannot be written still leaves the core
 * read for its notes.
 */
async function streamArchive(
  capture: Capture,
  admitted: Admitted,
  source: CoreSource,
  inspector: CoreInspectorStream,
): Promise<Outcome> {
  const { directory, options, warnings } = capture;
  const signal = options.signal;
  const claim = claimer(capture, admitted);
  let end: { inputBytes: number; cut: boolean } | undefined;
  let written = 0;
  // A byte stream: the compressor's block buffers are handed down, and the
  // core is read straight into them.
  const feed = new ReadableStream<Uint8Array>({
    type: "bytes",
    async pull(controller) {
      const request = (controller as ReadableByteStreamController)
        .byobRequest;
      const asked = request?.view ?? undefined;
      // Taken before the read moves the buffer.
      const offset = asked?.byteOffset ?? 0;
      const capacity = asked?.buffer.byteLength ?? 0;
      const into = asked === undefined
        ? undefined
        : new Uint8Array(asked.buffer, asked.byteOffset, asked.byteLength);
      const chunk = signal?.aborted ? undefined : await source.read(into);
      if (signal?.aborted) {
        controller.error(new InterruptedError(String(signal.reason)));
      } else if (chunk === undefined) {
        controller.close();
        // A read that moved the request's memory answers with that memory.
        const moved = source.endView;
        if (
          moved !== undefined && moved.byteOffset === offset &&
          moved.buffer.byteLength === capacity
        ) request?.respondWithNewView(moved);
        else request?.respond(0);
      } else if (
        request && chunk.byteOffset === offset &&
        chunk.buffer.byteLength === capacity
      ) {
        request.respondWithNewView(chunk);
      } else controller.enqueue(chunk.slice());
    },
    cancel() {
      // The compressor stopped (at the claim, or on an error): what is
      // read next is decided below.
    },
  }, { highWaterMark: 0 });
  const compressed = parallelCompress(feed, {
    format: capture.format,
    level: capture.level,
    jobs: capture.jobs,
    inline: capture.jobs === 1,
    fallback: "inline",
    onWarning: (message) => warnings.push(message),
    // The chunk index for parallel decompression, sized by the core's own
    // headers, written over the header at the end.
    index: {
      expectedSize: () => {
        const declared = inspector.declaredSize;
        return declared === undefined
          ? undefined
          : Math.min(declared, source.limit);
      },
    },
    maxOutput: (needed: number) => claim.allowance(needed),
    onEnd: (e) => end = e,
  });
  const counted = compressed.pipeThrough(watch(capture, (n) => written = n));
  const path = join(directory, admitted.base + formatExtension(capture.format));
  try {
    const archive = await writeFileAtomic(path, counted, {
      mode: capture.mode,
      amend: compressed.amendment,
      // A signal stops the write wherever it waits (a stalled producer,
      // workers that do not answer).
      ...compact({ signal }),
    });
    // Cut at the claim: reading stops there, and the process is released.
    if (end?.cut) await source.stop();
    let reason: string | undefined;
    if (source.cut) {
      reason = `cut at ${source.limit} bytes (${
        source.limit === capture.store.maxSize
          ? "--max-size"
          : "RLIMIT_CORE of the crashed process"
      }); reading stopped there`;
    } else if (end?.cut) {
      reason =
        `cut at ${end.inputBytes} bytes of core (${written} compressed): --max-use ${capture.limits.maxUse} bytes left no more room; reading stopped there`;
    }
    return { archive, compressedSize: written, lost: false, reason };
  } catch (error) {
    if (signal?.aborted) return { compressedSize: 0, lost: false };
    const policy = error instanceof KeepFreeError;
    // Read the rest for the notes and the size, and release the process.
    await readForNotes(capture, source);
    return {
      compressedSize: 0,
      lost: !policy,
      reason: `${
        errorText(error)
      }: the partial core was removed, metadata only`,
    };
  }
}

/** The room a capture claims of `--max-use`, grown as the core needs it. */
interface Claimer {
  /**
   * The bytes the archive may take, given that it needs `needed` bytes to
   * go on: asks the store for more first when the claim is short.
   */
  allowance(needed: number): number | Promise<number>;
}

function claimer(capture: Capture, admitted: Admitted): Claimer {
  const { directory, warnings, limits } = capture;
  const overhead = RESERVATION_BYTES + UUID_ROOM;
  let total = admitted.record.claim ?? overhead;
  let denied = false;
  const ask = async (short: number) => {
    await withStoreLock(directory, async () => {
      const clocks: ClockReading = readClocks();
      const ledger = await readLedger(directory, { clocks, warnings });
      const { remove, grant } = extendClaim(
        ledger.entries,
        admitted.base,
        short,
        {
          want: Math.max(
            claimStep(limits.maxUse),
            Math.min(Math.floor(total / 4), Math.floor(limits.maxUse / 16)),
          ),
          maxUse: limits.maxUse,
        },
      );
      await removeEntries(directory, ledger.entries, remove, warnings);
      if (grant < short) denied = true;
      if (grant <= 0) return;
      total += grant;
      admitted.record.claim = total;
      await admitted.reservation.update(
        metadataOf(capture, {
          archive: admitted.base + formatExtension(capture.format),
          reason: "being captured",
          capture: admitted.record,
          report: emptyReport(),
        }),
      );
    }, { warnings });
  };
  return {
    allowance(needed) {
      const allowed = total - overhead;
      if (needed <= allowed || denied) return allowed;
      return ask(needed - allowed).catch((error) => {
        warnings.push(`Cannot claim more room: ${errorText(error)}`);
        denied = true;
      }).then(() => total - overhead);
    },
  };
}

/**
 * Counts what is written, and stops the capture when free space falls
 * under --keep-free.
 */
function watch(
  capture: Capture,
  count: (bytes: number) => void,
): TransformStream<Uint8Array, Uint8Array> {
  const { directory, limits } = capture;
  let written = 0;
  let sinceCheck = 0;
  return new TransformStream({
    async transform(chunk, controller) {
      written += chunk.length;
      sinceCheck += chunk.length;
      count(written);
      if (sinceCheck >= SPACE_CHECK_BYTES) {
        sinceCheck = 0;
        const { free } = await fileSystemSpace(directory);
        if (free < limits.keepFree) {
          throw new KeepFreeError(
            `free space fell to ${free} bytes, under --keep-free ${limits.keepFree}, while storing`,
          );
        }
      }
      controller.enqueue(chunk);
    },
  });
}

/**
 * Phase 3: who crashed, the `.uuid` copy, the final record, the rate
 * count of a core that was not stored after all, and the after hook.
 */
async function describe(
  capture: Capture,
  admitted: Admitted,
  outcome: Outcome & { report: CoreReport; identity: Identity },
): Promise<CaptureResult> {
  const { directory, warnings, options } = capture;
  const { report } = outcome;
  const signal = options.signal;
  if (outcome.archive !== undefined && outcome.reason !== undefined) {
    report.truncated = true;
  }
  const { identity } = outcome;
  let uuidFile: string | undefined;
  if (identity.program?.uuid !== undefined) {
    try {
      uuidFile = basename(
        await writeFileAtomic(
          join(directory, `${admitted.base}.txt`),
          ReadableStream.from([identity.program.uuid]),
          { mode: capture.mode },
        ),
      );
    } catch (error) {
      warnings.push(`Cannot write the .uuid copy: ${errorText(error)}`);
    }
  }
  const { owner: _o, claim: _c, protects: _p, ...kept } = admitted.record;
  const record: CaptureRecord = {
    ...kept,
    state: signal?.aborted ? "interrupted" : "done",
  };
  const archiveName = outcome.archive === undefined
    ? null
    : basename(outcome.archive);
  const final = (withDetails: boolean) =>
    metadataOf(capture, {
      archive: archiveName,
      reason: outcome.reason,
      capture: record,
      report: withDetails ? report : {
        size: report.size,
        programs: [],
        modules: [],
        truncated: report.truncated,
      },
      compressedSize: archiveName === null ? null : outcome.compressedSize,
      identity: withDetails ? identity : {},
      ...compact({ uuidFile }),
    });
  // Uncounted first, so that the record says so if that fails.
  if (archiveName === null) {
    await forgetRate(capture, admitted.base);
  }
  let metadata: string | undefined = admitted.reservation.path;
  try {
    await admitted.reservation.finish(final(true), final(false));
  } catch (error) {
    warnings.push(`Cannot complete the metadata: ${errorText(error)}`);
    metadata = undefined;
  }
  if (capture.store.after && !signal?.aborted) {
    const problem = await runHook(capture.store.after, [
      outcome.archive ?? admitted.reservation.path,
    ]);
    if (problem !== undefined) {
      warnings.push(problem);
      // The record says it too. The hook ran for a while: another capture
      // may have removed the core for room since, and its word stays.
      await withStoreLock(directory, async () => {
        const path = admitted.reservation.path;
        const current = await readSidecar(path);
        const next = current === undefined ||
            current.archive === archiveName
          ? final(true)
          : { ...current, warnings: [...(current.warnings ?? []), problem] };
        await writeFileAtomic(
          path,
          ReadableStream.from([
            new TextEncoder().encode(JSON.stringify(next, null, 2) + "\n"),
          ]),
          { mode: capture.mode, replace: true },
        );
      }, { warnings }).catch(() => {});
    }
  }
  return {
    archive: outcome.archive,
    reason: outcome.reason,
    metadata,
    coreSize: report.size,
    compressedSize: outcome.compressedSize,
    lost: outcome.lost,
    ...(signal?.aborted ? { interrupted: String(signal.reason) } : {}),
    warnings,
  };
}

/** A core counted by the rate limit was not stored: uncount it. */
async function forgetRate(capture: Capture, base: string): Promise<void> {
  const { directory, warnings } = capture;
  await withStoreLock(directory, async () => {
    const now = Date.now();
    const history = await readRateState(directory, { now, warnings: [] });
    if (!history.some((r) => r.base === base)) return;
    await writeRateState(directory, history.filter((r) => r.base !== base), {
      now,
      warnings,
    });
  }, { warnings, timeoutMs: 10_000 }).catch((error) => {
    warnings.push(`Cannot update the rate state: ${errorText(error)}`);
  });
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
    // The kernel keeps 15 bytes of a command name; a core may hold 16.
    if (
      process !== undefined && comm !== undefined &&
      process.comm !== comm.slice(0, 15)
    ) {
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
      } catch (error) {
        warnings.push(`${errorText(error)} (the program, through ${exe})`);
      }
      // The crashed process's own executable was there: a path named by
      // the arguments can only be worse.
      return identity;
    }
  }
  if (facts.exe !== undefined) {
    const path = facts.exe.replaceAll("!", "/");
    if (!path.startsWith("/") || path.split("/").includes("..")) {
      warnings.push(
        `ignored --exe '${
          printable(path)
        }': expected an absolute path without '..', as the kernel's %E is`,
      );
      return identity;
    }
    try {
      identity.program = await readProgramInfo(path, { noFollow: true });
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
    // Names hold a four-digit year.
    if (time.getTime() <= Date.UTC(9999, 11, 31, 23, 59, 59)) return time;
    warnings.push(
      `ignored time ${facts.time}: expected a time before the year 10000`,
    );
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
