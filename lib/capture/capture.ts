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

import type { StoreOptions } from "../store/mod.ts";
import type { KernelFacts } from "../process/mod.ts";
import type { Format } from "../compress/mod.ts";
import { CoreInspectorStream } from "../elf/mod.ts";
import { runHook } from "./hooks.ts";
import { prepare } from "./_prepare.ts";

export { DEFAULT_STORE, PRESSED_LEVEL, PRESSURE_HOLD } from "./_prepare.ts";
import { coreSource, READ_SIZE } from "./_source.ts";
import { compact, openByteSource } from "../util/mod.ts";
import { admitCapture } from "./_admit.ts";
import { readForNotes, streamArchive } from "./_stream.ts";
import { describe } from "./_describe.ts";
import { afterHook } from "./_after_hook.ts";
import { identifyProgram, Identity } from "./_identify.ts";
import {
  crashedIn,
  nameOnline,
  takeProcessFiles,
  traceCapture,
} from "./_trace.ts";
import { backtraceSignature, type ProcessFiles } from "../unwind/mod.ts";

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
   * Whether the input's writer waits on the capture (the kernel, on a full
   * pipe: `stdinPressure` in `lib/process/`), asked before each read.
   * Without `level`, the first read that finds it waiting switches the
   * blocks to level {@linkcode PRESSED_LEVEL}, until
   * {@linkcode PRESSURE_HOLD} blocks in a row are read without finding it
   * so: measured through the kernel on the benchmark's mixed 1 GiB core,
   * level 5 kept the crashed process frozen 1.9 s (median of 3), level 2
   * 1.7 s, for 0.3% more bytes.
   *
   * @default {undefined}
   */
  pressure?: () => boolean;
  /**
   * Bytes the input holds ready to be read (the pipe's `FIONREAD`:
   * `StdinPressure.available` in `lib/process/`). With `pressure`, the
   * compression workers start only once less than a block is ready and
   * the pipe is not nearly full (this thread has time to spare), once the
   * spill file cannot take a block, or at the end of the core: blocks that
   * need a worker wait in the spill file until then.
   *
   * @default {undefined}
   */
  backlog?: () => number;
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
  /** The signal and the crashing thread's top frame: `SIGSEGV in level3 (prog + 0x1170)`. */
  crashedIn?: string;
  /** Everything that went wrong but did not cost the core. */
  warnings: string[];
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
 * ```ts
 * import { captureCore } from "./capture.ts";
 * import { gunzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * const core = new Uint8Array(64 << 10).fill(7);
 * const result = await captureCore(ReadableStream.from([core]), {
 *   directory: store,
 *   argument: "a.out",
 *   jobs: 1,
 * });
 * assert.match(result.archive!, /Core_\d{8}_\d{6}_a\.out\.gz$/);
 * assert.deepEqual(gunzipSync(await Deno.readFile(result.archive!)), Buffer.from(core));
 * assert.ok(result.metadata!.endsWith(".json"));
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function captureCore(
  input: ReadableStream<Uint8Array>,
  options: CaptureOptions,
): Promise<CaptureResult> {
  const capture = await prepare(options);
  const reader = openByteSource(input);
  const stopReading = () => void reader.cancel().catch(() => {});
  options.signal?.addEventListener("abort", stopReading, { once: true });
  // The crashed process's module files, opened before it is let go.
  let processFiles: ProcessFiles | undefined;
  try {
    if (capture.store.before) {
      const problem = await runHook(capture.store.before, []);
      if (problem !== undefined) capture.warnings.push(problem);
    }
    // The first bytes, before any decision: an empty input is no core.
    const head = options.signal?.aborted
      ? undefined
      : await reader.readInto(new Uint8Array(READ_SIZE)).catch(() => undefined);
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
        // The modules' files, for the stack traces, while they are there.
        if (identity.process !== undefined) {
          processFiles = await takeProcessFiles(
            inspector.report,
            capture.facts.pid,
          );
        }
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
    const backtrace = options.signal?.aborted
      ? undefined
      : await traceCapture(inspector.report, processFiles, capture.warnings);
    // Closed once traced (and, on a failure before that, below).
    processFiles?.[Symbol.dispose]();
    const described = await describe(capture, admitted, {
      ...outcome,
      reason,
      report: inspector.report,
      identity,
      backtrace,
      named: await nameOnline(
        backtrace,
        capture.store.symbolizeOnline,
        capture.warnings,
      ),
      signature: backtraceSignature(
        backtrace,
        compact({ skip: capture.store.signatureSkip }),
      ),
    });
    const top = crashedIn(
      backtrace,
      capture.facts.signal ?? inspector.report.notes?.signal?.signo,
    );
    if (top !== undefined) described.result.crashedIn = top;
    await afterHook(capture, admitted, described);
    return described.result;
  } catch (error) {
    throw new CaptureFailedError(error, capture.warnings);
  } finally {
    processFiles?.[Symbol.dispose]();
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
