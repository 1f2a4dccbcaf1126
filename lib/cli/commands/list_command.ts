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
  /** The crash's signature id, when traced. */
  signature: string | null;
  /** The frames the signature was made from: `prog!crash_level3` ... */
  signature_frames: string[] | null;
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
      signature: m?.signature?.id ?? null,
      signature_frames: m?.signature?.frames ?? null,
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
  return alignTable(table);
}

/** Columns padded to their widest cell, two spaces apart. */
function alignTable(table: string[][]): string {
  const widths = table[0]!.map((_, i) =>
    Math.max(...table.map((row) => row[i]!.length))
  );
  return table.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!))
      .join("  ")
  ).join("\n");
}

/** One crash signature in `list --group` (also the `--json` shape). */
export interface GroupRow {
  /** The signature's id. */
  signature: string;
  /** How many stored crashes have it. */
  count: number;
  /** The first crash's time, ISO 8601. */
  first: string;
  /** The last crash's time. */
  last: string;
  /** The program of the last crash. */
  program: string | null;
  /** The top function of the signature: where the bug is. */
  function: string | null;
  /** The frames the signature was made from. */
  frames: string[];
  /** The last crash's file: an ID for info/extract/debug. */
  file: string;
}

/**
 * Groups rows by crash signature, the most frequent first; rows without a
 * signature are left out.
 *
 * @example Usage
 * ```ts
 * import { groupRows, type ListRow } from "./list_command.ts";
 * import assert from "node:assert/strict";
 *
 * const row = (time: string, signature: string | null): ListRow => ({
 *   time, pid: 1, signal: "SIGSEGV", program: "prog", function: "f", signature,
 *   signature_frames: signature === null ? null : ["prog!f"],
 *   size: 1, stored: 1, ratio: 1, uuid: null, truncated: false, reason: null, file: time,
 * });
 * const groups = groupRows([row("t1", "aa"), row("t2", "bb"), row("t3", "aa"), row("t4", null)]);
 * assert.deepEqual(groups.map((g) => [g.signature, g.count, g.first, g.last]), [
 *   ["aa", 2, "t1", "t3"],
 *   ["bb", 1, "t2", "t2"],
 * ]);
 * ```
 *
 * @param rows From {@linkcode listRows}, oldest first.
 * @returns One row per signature.
 */
export function groupRows(rows: ListRow[]): GroupRow[] {
  const groups = new Map<string, GroupRow>();
  for (const row of rows) {
    if (row.signature === null) continue;
    const group = groups.get(row.signature);
    const frames = row.signature_frames ?? [];
    // `prog!crash_level3` names the function; `lib.so+0x1234` is all there is.
    const top = frames[0]?.replace(/^[^!]*!/, "") ?? null;
    if (group === undefined) {
      groups.set(row.signature, {
        signature: row.signature,
        count: 1,
        first: row.time,
        last: row.time,
        program: row.program,
        function: top,
        frames,
        file: row.file,
      });
    } else {
      group.count++;
      group.last = row.time;
      group.program = row.program;
      group.file = row.file;
    }
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/**
 * Formats groups as an aligned table for a person.
 *
 * @param groups From {@linkcode groupRows}.
 * @returns The table, without a final newline; a sentence when empty.
 */
export function formatGroups(groups: GroupRow[]): string {
  if (groups.length === 0) return "No crashes with a signature stored.";
  const time = (t: string) => t.replace("T", " ").replace(/\.\d+Z$/, "Z");
  return alignTable([
    ["COUNT", "FIRST", "LAST", "PROGRAM", "FUNCTION", "SIGNATURE", "LAST FILE"],
    ...groups.map((g) => [
      String(g.count),
      time(g.first),
      time(g.last),
      g.program ?? "-",
      g.function ?? "-",
      g.signature,
      g.file,
    ]),
  ]);
}
