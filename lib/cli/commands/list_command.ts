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
  /** Its real user and group ids, when known. */
  uid: number | null;
  /** Its real group id. */
  gid: number | null;
  /** The executable's path, when known. */
  exe: string | null;
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
  /** The sidecar names an archive that is no longer in the store. */
  missing: boolean;
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
      uid: m?.uid ?? null,
      gid: m?.gid ?? null,
      exe: m?.exe ?? null,
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
      missing: entry.archive === undefined && typeof m?.archive === "string",
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

/**
 * What was kept, with the reason's short form: `stored`, `truncated`,
 * `metadata only (RLIMIT_CORE 0)`, `missing` (the archive is gone).
 *
 * @example Usage
 * ```ts
 * import { stateOf } from "./list_command.ts";
 * import assert from "node:assert/strict";
 *
 * const reason = "RLIMIT_CORE of the crashed process is 0 bytes, below one page: metadata only";
 * assert.equal(stateOf({ stored: null, truncated: false, reason, missing: false }), "metadata only (RLIMIT_CORE 0)");
 * assert.equal(stateOf({ stored: 10, truncated: true, reason: "cut at 4096 bytes", missing: false }), "truncated (cut at 4096 bytes)");
 * ```
 *
 * @param row The row's storage fields.
 * @returns The STATE column's text.
 */
export function stateOf(
  row: Pick<ListRow, "stored" | "truncated" | "reason" | "missing">,
): string {
  if (row.missing) return "missing";
  const why = shortReason(row.reason);
  const state = row.stored === null
    ? "metadata only"
    : row.truncated
    ? "truncated"
    : "stored";
  return why === undefined || state === "stored" ? state : `${state} (${why})`;
}

/** A reason's short form, for the STATE column. */
function shortReason(reason: string | null): string | undefined {
  if (reason === null) return undefined;
  const rlimit = /^RLIMIT_CORE of the crashed process is (\d+) bytes/.exec(
    reason,
  );
  if (rlimit !== null) return `RLIMIT_CORE ${rlimit[1]}`;
  const forms: [RegExp, string][] = [
    [/^empty core/, "empty core"],
    [/--rate|rate limit/, "rate limit"],
    [/--keep-free/, "--keep-free"],
    [/--max-use/, "--max-use"],
    [/--max-size/, "--max-size"],
    [/no space left|ENOSPC|disk (is )?full/i, "disk full"],
  ];
  for (const [pattern, text] of forms) if (pattern.test(reason)) return text;
  const interrupted = /^interrupted by (\S+)/.exec(reason);
  if (interrupted !== null) return `interrupted by ${interrupted[1]}`;
  const cut = /^cut at (\d+) bytes/.exec(reason);
  if (cut !== null) return `cut at ${cut[1]} bytes`;
  return reason.length > 28 ? `${reason.slice(0, 27)}…` : reason;
}

/** One decimal; a ratio under 0.1 (a tiny core) keeps one significant digit. */
function ratioOf(size: number, stored: number): number {
  const ratio = size / stored;
  return ratio < 0.1
    ? Number(ratio.toPrecision(1))
    : Math.round(ratio * 10) / 10;
}

/** Options for {@linkcode formatRows}. */
export interface FormatRowsOptions {
  /**
   * Times in UTC; else in the local time zone, as coredumpctl shows them.
   *
   * @default {false}
   */
  utc?: boolean;
  /**
   * The header line (`--no-legend` leaves it out).
   *
   * @default {true}
   */
  legend?: boolean;
  /**
   * The rows were filtered: an empty table says "No cores match".
   *
   * @default {false}
   */
  filtered?: boolean;
}

/**
 * Formats rows as an aligned table for a person: TIME, PID, UID, GID, SIG,
 * COREFILE (what was kept, and why not), EXE, SIZE, RATIO, the top
 * FUNCTION and the FILE to give info, extract or debug.
 *
 * @param rows The rows.
 * @param options Time zone, legend, and whether filters were given.
 * @returns The table, without a final newline; a sentence when empty.
 */
export function formatRows(
  rows: ListRow[],
  options: FormatRowsOptions = {},
): string {
  if (rows.length === 0) {
    return options.filtered ? "No cores match." : "No cores stored.";
  }
  const cut = (text: string | null, max: number) =>
    text === null
      ? "-"
      : text.length > max
      ? `${text.slice(0, max - 1)}…`
      : text;
  const table = [
    [
      "TIME",
      "PID",
      "UID",
      "GID",
      "SIG",
      "COREFILE",
      "EXE",
      "SIZE",
      "RATIO",
      "FUNCTION",
      "FILE",
    ],
    ...rows.map((r) => [
      formatTime(r.time, options.utc ?? false),
      r.pid === null ? "-" : String(r.pid),
      r.uid === null ? "-" : String(r.uid),
      r.gid === null ? "-" : String(r.gid),
      r.signal ?? "-",
      stateOf(r),
      r.exe ?? r.program ?? "-",
      r.size === null ? "-" : formatBytes(r.size),
      r.ratio === null ? "-" : `${r.ratio.toFixed(1)}x`,
      cut(r.function, 32),
      r.file,
    ]),
  ];
  return alignTable(options.legend === false ? table.slice(1) : table);
}

/**
 * A crash's time as the listing shows it: local, with the zone's name, or
 * UTC.
 *
 * @example Usage
 * ```ts
 * import { formatTime } from "./list_command.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatTime("2026-11-26T12:47:45.000Z", true), "2026-11-26 12:47:45 UTC");
 * ```
 *
 * @param iso An ISO 8601 time.
 * @param utc UTC; else local.
 * @returns `YYYY-MM-DD HH:MM:SS ZONE`.
 */
export function formatTime(iso: string, utc: boolean): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  if (utc) return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  const two = (n: number) => String(n).padStart(2, "0");
  const zone = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
    .formatToParts(date).find((p) => p.type === "timeZoneName")?.value ?? "";
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${
    two(date.getDate())
  } ${two(date.getHours())}:${two(date.getMinutes())}:${
    two(date.getSeconds())
  } ${zone}`;
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
 *   time, pid: 1, uid: 0, gid: 0, exe: "/bin/prog", signal: "SIGSEGV", program: "prog", function: "f", signature,
 *   signature_frames: signature === null ? null : ["prog!f"], missing: false,
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
