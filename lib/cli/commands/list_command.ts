/**
 * `gzcoredump list [PROGRAM] [-p DIR] [--pid PID] [--since TIME] [--json]`:
 * one line per stored core, newest last, like `coredumpctl list`.
 *
 * @module
 */

import type { CoreMetadata, CoreRecord } from "../../store/mod.ts";
import { formatBytes } from "../../util/mod.ts";

/** One row of the listing (also the `--json` shape). */
export interface ListRow {
  /** When the crash happened (the name's time), ISO 8601. */
  time: string;
  /** The crashed process's pid, when known. */
  pid: number | null;
  /** The signal's name, when known. */
  signal: string | null;
  /** The program's name (command, `-a` name or executable). */
  program: string | null;
  /** The crashing thread's top function (or module + offset), when traced. */
  function: string | null;
  /** Core bytes (uncompressed). */
  size: number | null;
  /**
   * Compressed bytes of the archive, or null when only metadata was kept
   * (no archive file, or the sidecar's `archive` is null).
   */
  stored: number | null;
  /** Core bytes per stored byte; null for an empty or unstored core. */
  ratio: number | null;
  /** The program's `.uuid` as text, when it has one. */
  uuid: string | null;
  /** Whether the stored core was cut. */
  truncated: boolean;
  /** Why the core was not stored or was cut. */
  reason: string | null;
  /** The archive's (or the sidecar's) file name: an ID for info/extract/debug. */
  file: string;
}

/**
 * Turns store records into listing rows.
 *
 * @param records From `readCatalog`, oldest first.
 * @returns The rows, in the same order.
 */
export function listRows(records: CoreRecord[]): ListRow[] {
  return records.map(({ entry, metadata: m }) => {
    const size = m?.core_size ?? null;
    // No archive file, or a sidecar that says none was kept
    // (`"archive": null`, with its reason): metadata only.
    const stored = entry.archive === undefined || m?.archive === null
      ? null
      : m?.compressed_size ?? null;
    return {
      time: m?.time ?? entry.time.toISOString(),
      pid: m?.pid ?? null,
      signal: m?.signal_name ?? null,
      program: m?.comm ?? m?.argument ?? null,
      function: topFunction(m),
      size,
      stored,
      // An empty core has no ratio, nor has one that was not stored.
      ratio: size !== null && size > 0 && stored ? ratioOf(size, stored) : null,
      uuid: m?.uuid?.trim() ?? null,
      truncated: m?.truncated ?? false,
      reason: m?.reason ?? null,
      file: entry.archive ?? entry.metadata ?? entry.files[0]!,
    };
  });
}

/** The crashing thread's top frame: its function, else module + offset. */
function topFunction(m: Partial<CoreMetadata> | undefined): string | null {
  const thread = m?.backtrace?.find((t) => t.crashed);
  const top = thread?.frames[0];
  if (top === undefined) return null;
  if (top.function !== null) return top.function;
  if (top.module === null) return top.pc;
  return `${top.module.slice(top.module.lastIndexOf("/") + 1)}+${top.offset}`;
}

/** One decimal; a ratio under 0.1 (a tiny core) keeps one significant digit. */
function ratioOf(size: number, stored: number): number {
  const ratio = size / stored;
  return ratio < 0.1
    ? Number(ratio.toPrecision(1))
    : Math.round(ratio * 10) / 10;
}

/**
 * Formats rows as an aligned table for a person.
 *
 * @param rows The rows.
 * @returns The table, without a final newline; a sentence when empty.
 */
export function formatRows(rows: ListRow[]): string {
  if (rows.length === 0) return "No cores stored.";
  const table = [
    [
      "TIME",
      "PID",
      "SIGNAL",
      "PROGRAM",
      "FUNCTION",
      "SIZE",
      "RATIO",
      "UUID",
      "STATE",
      "FILE",
    ],
    ...rows.map((r) => [
      r.time.replace("T", " ").replace(/\.\d+Z$/, "Z"),
      r.pid === null ? "-" : String(r.pid),
      r.signal ?? "-",
      r.program ?? "-",
      r.function === null
        ? "-"
        : r.function.length > 32
        ? `${r.function.slice(0, 31)}…`
        : r.function,
      r.size === null ? "-" : formatBytes(r.size),
      r.ratio === null ? "-" : `${r.ratio}x`,
      r.uuid === null
        ? "-"
        : r.uuid.length > 36
        ? `${r.uuid.slice(0, 35)}…`
        : r.uuid,
      r.stored === null
        ? "metadata only"
        : r.truncated
        ? "truncated"
        : "stored",
      r.file,
    ]),
  ];
  const widths = table[0]!.map((_, i) =>
    Math.max(...table.map((row) => row[i]!.length))
  );
  return table.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!))
      .join("  ")
  ).join("\n");
}
