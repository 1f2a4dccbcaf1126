/**
 * The metadata sidecar (`Core_<time>[_<arg>].json`): everything known about
 * a crash, merged from the kernel's `core_pattern` facts, the core's own ELF
 * notes, the program's identity and `/proc/<pid>`. `gzcoredump info --json`
 * prints the same fields.
 *
 * @module
 */

import type { Format } from "../compress/mod.ts";
import type { CoreReport } from "../elf/mod.ts";
import type { ProgramInfo } from "../elf/mod.ts";
import type { Backtrace, CrashSignature } from "../unwind/mod.ts";
import type { NamedFrame } from "../debuginfo/mod.ts";
import {
  exePath,
  type KernelFacts,
  type ProcessFacts,
  signalName,
} from "../process/mod.ts";
import { compact } from "../util/mod.ts";
import denoJson from "../../deno.json" with { type: "json" };

/** A mapped module in the sidecar; addresses are hex strings. */
export interface ModuleEntry {
  /** The file's path, as the core's `NT_FILE` note names it. */
  path: string;
  /** GNU build-id, lower-case hex; null when its headers were not in the core. */
  build_id: string | null;
  /** First address of the file's mappings, hex (`0x55612a42f000`). */
  start: string;
  /** End of the last of its mappings, hex. */
  end: string;
}

/**
 * A frame of a stack trace in the sidecar; addresses are hex strings (its
 * fields but `pc` as `info --symbolize` names them).
 */
export interface FrameEntry extends NamedFrame {
  /** The PC (a return address, but for frame 0 and a frame a signal stopped). */
  pc: string;
}

/** A thread's stack trace in the sidecar. */
export interface ThreadEntry {
  /** Thread id. */
  tid: number;
  /** Its name, when the process was still there to ask. */
  name: string | null;
  /** True for the thread that crashed. */
  crashed: boolean;
  /** Its frames, innermost first. */
  frames: FrameEntry[];
  /** Why the walk stopped early, when it did. */
  error?: string;
}

/**
 * The store's bookkeeping of one capture, in its sidecar: written first,
 * when the capture is admitted, and kept when it is done.
 */
export interface CaptureRecord {
  /** "capturing" while under way; "done"; "interrupted" (killed, power cut). */
  state: "capturing" | "done" | "interrupted";
  /** Storing order in the store: higher is newer. */
  seq: number;
  /** When this tool stored it, by its clock. */
  stored_at: string;
  /** The same, in milliseconds since the epoch. */
  stored_wall_ms: number;
  /** Milliseconds since boot when stored (immune to clock jumps). */
  uptime_ms: number;
  /** The boot it was stored in. */
  boot_id: string;
  /** The program, as the rate limit counts it. */
  rate_key: string;
  /** While capturing: the capturing process. */
  owner?: { pid: number; start_ticks: number; boot_id: string };
  /** While capturing: archive bytes claimed of --max-use. */
  claim?: number;
  /** While capturing: storing orders it must never remove. */
  protects?: number[];
}

/** The JSON sidecar stored next to every core (snake_case fields). */
export interface CoreMetadata {
  /** The tool that wrote the sidecar. */
  tool: "gzcoredump";
  /** That tool's version. */
  version: string;
  /** The archive's file name in the store; null when only metadata was kept. */
  archive: string | null;
  /** The archive's format; null without an archive. */
  format: Format | null;
  /** The compression level asked for; null for the default. */
  level: number | null;
  /**
   * Blocks of 1 MiB deflated at the faster level 2 because the kernel was
   * waiting on a full pipe (capture at the default level); absent otherwise.
   */
  pressed_blocks?: number;
  /**
   * Blocks of 1 MiB that waited on disk (the spill file) for a compression
   * worker, so that the core was read at the kernel's pace; absent when
   * none did.
   */
  spilled_blocks?: number;
  /** When the crash happened, ISO 8601 in UTC. */
  time: string;
  /** The host's name (`%h`, else this host's); null when unknown. */
  hostname: string | null;
  /** The crashed process's pid (`%P`, else the core's notes). */
  pid: number | null;
  /** Its real user id (`%u`, else the core's notes). */
  uid: number | null;
  /** Its real group id (`%g`, else the core's notes). */
  gid: number | null;
  /** The signal that caused the dump (`%s`, else the core's notes). */
  signal: number | null;
  /** That signal's name: `"SIGSEGV"` ... */
  signal_name: string | null;
  /** The signal's `si_code` from the core's `NT_SIGINFO`. */
  signal_code: number | null;
  /** The faulting address, hex, for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP. */
  fault_address: string | null;
  /** The command name (at most 15 bytes), from the core's notes or `/proc`. */
  comm: string | null;
  /** The executable's path (`%E`, else `/proc/<pid>/exe`). */
  exe: string | null;
  /** The arguments: `/proc/<pid>/cmdline`, else the notes' first 80 bytes. */
  cmdline: string[] | null;
  /** The untrusted `-a` value, as given. */
  argument: string | null;
  /** The program's `.uuid` section, as text. */
  uuid: string | null;
  /** True when `.uuid` was longer than what was kept. */
  uuid_truncated: boolean;
  /** The file in the store the `.uuid` was copied to (`Core_<...>.txt`). */
  uuid_file: string | null;
  /** GNU build-id of the executable, lower-case hex: the core's, else the program's. */
  build_id: string | null;
  /** The program's `.note.package` metadata: its JSON, or its text when not JSON. */
  package: unknown;
  /** Where the program was read from (`/proc/<pid>/exe` or a path). */
  program_source: string | null;
  /** How many threads the core holds (its `NT_PRSTATUS` notes). */
  threads: number | null;
  /** The thread that crashed (the core's first); null without notes. */
  crash_thread: number | null;
  /** Every thread's stack trace, the crashing thread first; null when none was made. */
  backtrace: ThreadEntry[] | null;
  /** Why there is no trace, or only frame 0 (`unsupported architecture`). */
  backtrace_error: string | null;
  /**
   * The crash's signature: an id shared by crashes of the same bug, and
   * the frames it was made from; null without a trace.
   */
  signature: { id: string; frames: string[] } | null;
  /** Files mapped into the process, the executable first. */
  modules: ModuleEntry[];
  /** The core's `e_machine`: 62 for x86-64 ... */
  machine: number | null;
  /** The core's ELF class: 32 or 64. */
  elf_class: number | null;
  /** The soft RLIMIT_CORE of the process (`%c`), in bytes. */
  rlimit: number | "unlimited" | null;
  /** The process's dumpable mode (`%d`): 0, 1 or 2. */
  dumpable: number | null;
  /** `/proc/<pid>/cgroup`, as the kernel wrote it. */
  cgroup: string | null;
  /** Selected `/proc/<pid>/status` fields, by name. */
  status: Record<string, string> | null;
  /** Bytes of the core that arrived. */
  core_size: number;
  /** Bytes its headers declare; null when it is not ELF. */
  expected_size: number | null;
  /** True when fewer bytes arrived than the headers declare. */
  truncated: boolean;
  /** Bytes of the archive. */
  compressed_size: number | null;
  /** How long storing took, in milliseconds. */
  duration_ms: number | null;
  /** Why the core's ELF structure could not be read. */
  elf_error: string | null;
  /** Why the core was not stored (metadata only), or was cut. */
  reason: string | null;
  /** The store's bookkeeping; null outside the store (`info` of a raw core). */
  capture: CaptureRecord | null;
  /** Problems that did not cost the core. */
  warnings: string[];
}

/** Everything the sidecar is made from. */
export interface MetadataSources {
  /** When the crash happened. */
  time: Date;
  /** What the inspector read from the core. */
  report: CoreReport;
  /**
   * The kernel's facts from `core_pattern`.
   *
   * @default {{}}
   */
  facts?: KernelFacts;
  /** The program's identity, when it could be read. */
  program?: ProgramInfo;
  /** Where the program was read from (`/proc/<pid>/exe` or a path). */
  programSource?: string;
  /** `/proc/<pid>` facts, when the process was still there. */
  process?: ProcessFacts;
  /** The executable's path from `/proc/<pid>/exe`, when readable. */
  exeLink?: string;
  /** The untrusted `-a` value. */
  argument?: string;
  /** Storage details; absent for `info` on a core that is not stored. */
  stored?: {
    /** The archive's file name; null when only metadata was kept. */
    archive: string | null;
    /** The archive's format. */
    format: Format;
    /** The compression level asked for; undefined for the default. */
    level: number | undefined;
    /** Blocks deflated faster while the kernel waited. */
    pressedBlocks?: number | undefined;
    /** Blocks that waited in the spill file. */
    spilledBlocks?: number | undefined;
    /** Bytes of the archive. */
    compressedSize: number | null;
    /** How long storing took, in milliseconds. */
    durationMs: number;
    /** The file the `.uuid` was copied to. */
    uuidFile: string | undefined;
    /** Why the core was not stored, or was cut. */
    reason?: string | undefined;
  };
  /** The hostname, when `%h` was not given. */
  hostname?: string;
  /** The threads' stack traces, when they were made. */
  backtrace?: Backtrace;
  /** The same, named online (`--symbolize-online`): these go in the sidecar. */
  named?: ThreadEntry[];
  /** The crash's signature, when there is a trace. */
  signature?: CrashSignature;
  /** The store's bookkeeping of the capture. */
  capture?: CaptureRecord;
  /**
   * Problems that did not cost the core.
   *
   * @default {[]}
   */
  warnings?: string[];
}

/**
 * Merges the sources into the sidecar. Kernel facts win over the core's
 * notes (they are the kernel's own view); the notes fill what the kernel
 * did not pass.
 *
 * @param sources What is known.
 * @returns The sidecar object, ready for `JSON.stringify`.
 *
 * @example Usage
 * ```ts
 * import { buildMetadata } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * // A core that was not ELF, as the inspector reports it, and the kernel's
 * // facts.
 * const metadata = buildMetadata({
 *   time: new Date(Date.UTC(2026, 10, 26, 12, 47, 45)),
 *   report: {
 *     size: 6,
 *     programs: [],
 *     modules: [],
 *     memory: [],
 *     truncated: false,
 *     error: "Cannot parse ELF: found magic 6e 6f 74 20 at offset 0x0, expected 7f 45 4c 46",
 *   },
 *   facts: { pid: 27159, signal: 11, exe: "!tmp!gze!prog_u", rlimit: Infinity },
 * });
 * assert.equal(metadata.time, "2026-11-26T12:47:45.000Z");
 * assert.equal(metadata.pid, 27159);
 * assert.equal(metadata.signal_name, "SIGSEGV");
 * assert.equal(metadata.exe, "/tmp/gze/prog_u");
 * assert.equal(metadata.rlimit, "unlimited");
 * assert.equal(metadata.archive, null);
 * assert.equal(metadata.elf_error?.startsWith("Cannot parse ELF"), true);
 * ```
 */
export function buildMetadata(sources: MetadataSources): CoreMetadata {
  const { report, facts = {}, program, process, stored } = sources;
  const notes = report.notes;
  const signal = facts.signal ?? notes?.signal?.signo ??
    notes?.threads[0]?.signal;
  const uuid = program?.uuid === undefined
    ? null
    : new TextDecoder().decode(program.uuid);
  return {
    tool: "gzcoredump",
    version: denoJson.version,
    archive: stored?.archive ?? null,
    format: stored?.format ?? null,
    level: stored?.level ?? null,
    ...compact({
      pressed_blocks: stored?.pressedBlocks,
      spilled_blocks: stored?.spilledBlocks || undefined,
    }),
    time: sources.time.toISOString(),
    hostname: facts.hostname ?? sources.hostname ?? null,
    pid: facts.pid ?? notes?.process?.pid ?? null,
    uid: facts.uid ?? notes?.process?.uid ?? null,
    gid: facts.gid ?? notes?.process?.gid ?? null,
    signal: signal ?? null,
    signal_name: signal === undefined ? null : signalName(signal),
    signal_code: notes?.signal?.code ?? null,
    fault_address: notes?.signal?.address === undefined
      ? null
      : hex(notes.signal.address),
    comm: notes?.process?.comm ?? process?.comm ?? null,
    exe: exePath(facts) ?? sources.exeLink ?? null,
    cmdline: process?.cmdline ??
      (notes?.process ? notes.process.args.split(" ") : null),
    argument: sources.argument ?? null,
    uuid,
    uuid_truncated: program?.uuidTruncated ?? false,
    uuid_file: stored?.uuidFile ?? null,
    build_id: report.buildId ?? program?.buildId ?? null,
    package: parsePackage(program?.packageMetadata),
    program_source: program === undefined
      ? null
      : sources.programSource ?? null,
    threads: notes ? notes.threads.length : null,
    crash_thread: notes?.threads[0]?.tid ?? null,
    backtrace: sources.named ??
      (sources.backtrace ? backtraceEntries(sources.backtrace) : null),
    backtrace_error: sources.backtrace?.error ?? null,
    signature: sources.signature === undefined
      ? null
      : { id: sources.signature.id, frames: sources.signature.frames },
    modules: report.modules.map((m) => ({
      path: m.path,
      build_id: m.buildId ?? null,
      start: hex(m.start),
      end: hex(m.end),
    })),
    machine: report.header?.machine ?? null,
    elf_class: report.header?.class ?? null,
    rlimit: facts.rlimit === Number.POSITIVE_INFINITY
      ? "unlimited"
      : facts.rlimit ?? null,
    dumpable: facts.dumpable ?? null,
    cgroup: process?.cgroup ?? null,
    status: process === undefined ? null : process.status,
    core_size: report.size,
    expected_size: report.expectedSize ?? null,
    truncated: report.truncated,
    compressed_size: stored?.compressedSize ?? null,
    duration_ms: stored?.durationMs ?? null,
    elf_error: report.error ?? null,
    reason: stored?.reason ?? null,
    capture: sources.capture ?? null,
    warnings: sources.warnings ?? [],
  };
}

/**
 * A trace as the sidecar has it: addresses as hex strings.
 *
 * @example Usage
 * ```ts
 * import { backtraceEntries } from "./metadata.ts";
 * import assert from "node:assert/strict";
 *
 * const [thread] = backtraceEntries({
 *   threads: [{ tid: 7, crashed: true, frames: [{ pc: 0x401136n, trust: "context" }] }],
 * });
 * assert.deepEqual(thread!.frames[0], {
 *   pc: "0x401136", module: null, build_id: null, offset: null,
 *   function: null, function_offset: null, trust: "context",
 * });
 * ```
 *
 * @param backtrace The unwinder's trace.
 * @returns Its threads, as the sidecar's `backtrace`.
 */
export function backtraceEntries(backtrace: Backtrace): ThreadEntry[] {
  return backtrace.threads.map((thread) => ({
    tid: thread.tid,
    name: thread.name ?? null,
    crashed: thread.crashed,
    frames: thread.frames.map((frame) => ({
      pc: hex(frame.pc),
      module: frame.module ?? null,
      build_id: frame.buildId ?? null,
      offset: frame.offset === undefined ? null : hex(frame.offset),
      function: frame.function ?? null,
      function_offset: frame.functionOffset === undefined
        ? null
        : hex(frame.functionOffset),
      trust: frame.trust,
    })),
    ...compact({ error: thread.error }),
  }));
}

/** The package note's JSON, parsed; its text when it is not valid JSON. */
function parsePackage(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}
