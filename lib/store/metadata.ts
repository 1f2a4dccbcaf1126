/**
 * The metadata sidecar (`Core_<time>[_<arg>].json`): everything known about
 * a crash, merged from the kernel's `core_pattern` facts, the core's own ELF
 * notes, the program's identity and `/proc/<pid>`. `gzcoredump info --json`
 * prints the same fields.
 *
 * @module
 */

import type { KernelFacts } from "../process/mod.ts";
import type { Format } from "../compress/mod.ts";
import type { CoreReport } from "../elf/mod.ts";
import type { ProcessFacts } from "../process/mod.ts";
import type { ProgramInfo } from "../elf/mod.ts";
import { signalName } from "../process/mod.ts";
import denoJson from "../../deno.json" with { type: "json" };

/** A mapped module in the sidecar; addresses are hex strings. */
export interface ModuleEntry {
  path: string;
  build_id: string | null;
  start: string;
  end: string;
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
  tool: "gzcoredump";
  version: string;
  archive: string | null;
  format: Format | null;
  level: number | null;
  time: string;
  hostname: string | null;
  pid: number | null;
  uid: number | null;
  gid: number | null;
  signal: number | null;
  signal_name: string | null;
  signal_code: number | null;
  fault_address: string | null;
  comm: string | null;
  exe: string | null;
  cmdline: string[] | null;
  argument: string | null;
  uuid: string | null;
  uuid_truncated: boolean;
  uuid_file: string | null;
  build_id: string | null;
  package: unknown;
  program_source: string | null;
  threads: number | null;
  modules: ModuleEntry[];
  machine: number | null;
  elf_class: number | null;
  rlimit: number | "unlimited" | null;
  dumpable: number | null;
  cgroup: string | null;
  status: Record<string, string> | null;
  core_size: number;
  expected_size: number | null;
  truncated: boolean;
  compressed_size: number | null;
  duration_ms: number | null;
  elf_error: string | null;
  /** Why the core was not stored (metadata only), or was cut. */
  reason: string | null;
  /** The store's bookkeeping; null outside the store (`info` of a raw core). */
  capture: CaptureRecord | null;
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
    archive: string | null;
    format: Format;
    level: number | undefined;
    compressedSize: number | null;
    durationMs: number;
    uuidFile: string | undefined;
    /** Why the core was not stored, or was cut. */
    reason?: string | undefined;
  };
  /** The hostname, when `%h` was not given. */
  hostname?: string;
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
 * ```ts ignore
 * import { buildMetadata } from "./metadata.ts";
 * const metadata = buildMetadata({ time: new Date(), report: inspector.report });
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
    exe: facts.exe?.replaceAll("!", "/") ?? sources.exeLink ?? null,
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
