/**
 * Crash-loop protection's memory: which cores each program stored, and
 * when. The records live in the store (`.gzcoredump-rate.json`), so they
 * survive reboots and the removal of the cores they count; callers hold the
 * store lock. A damaged, unreadable or unwritable state is a warning, never
 * a lost core: the sidecars still in the store count too
 * (`store_policy.ts`).
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../fs/mod.ts";
import { errorText } from "../util/mod.ts";

const STATE_FILE = ".gzcoredump-rate.json";
/** Most records remembered; the oldest are forgotten first. */
const MAX_RECORDS = 4096;
/** Records older than this are forgotten whatever the period. */
const MAX_AGE_MS = 7 * 86_400_000;
/** Largest state file read. */
const MAX_STATE_BYTES = 1 << 20;

/** One stored core of a program. */
export interface RateRecord {
  /** The program (its path or name). */
  key: string;
  /** The entry's base name; "" for records of an older version. */
  base: string;
  /** When it was stored, by this tool's clock (ms since the epoch). */
  at: number;
}

/**
 * Reads the records. A missing file is an empty history; a damaged one is
 * a warning and an empty history. Records stamped in the future (the clock
 * was set back since) count as stored now, so that none is kept forever.
 *
 * @param directory The store.
 * @param options The time now, and where to warn.
 * @returns The records, oldest first.
 *
 * @example Usage
 * ```ts
 * import { readRateState } from "./rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * const now = Date.UTC(2026, 0, 1);
 * const warnings: string[] = [];
 * // No file yet: no history.
 * assert.deepEqual(await readRateState(store, { now, warnings }), []);
 * await Deno.writeTextFile(
 *   `${store}/.gzcoredump-rate.json`,
 *   JSON.stringify({
 *     version: 2,
 *     records: [
 *       { key: "/usr/bin/app", base: "Core_b", at: now + 3_600_000 },
 *       { key: "/usr/bin/app", base: "Core_a", at: now - 60_000 },
 *     ],
 *   }),
 * );
 * // Oldest first; a record from the future counts as now.
 * assert.deepEqual(await readRateState(store, { now, warnings }), [
 *   { key: "/usr/bin/app", base: "Core_a", at: now - 60_000 },
 *   { key: "/usr/bin/app", base: "Core_b", at: now },
 * ]);
 * await Deno.writeTextFile(`${store}/.gzcoredump-rate.json`, "{ damaged");
 * assert.deepEqual(await readRateState(store, { now, warnings }), []);
 * assert.match(warnings[0] ?? "", /expected JSON/);
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function readRateState(
  directory: string,
  options: { now: number; warnings: string[] },
): Promise<RateRecord[]> {
  const path = join(directory, STATE_FILE);
  let text: string;
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile) {
      options.warnings.push(
        `ignored the rate state '${path}': it is not a regular file`,
      );
      return [];
    }
    if (info.size > MAX_STATE_BYTES) {
      options.warnings.push(
        `ignored the rate state '${path}': ${info.size} bytes, expected at most ${MAX_STATE_BYTES}`,
      );
      return [];
    }
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    options.warnings.push(
      `ignored the rate state '${path}': ${errorText(error)}`,
    );
    return [];
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    options.warnings.push(
      `ignored the rate state '${path}': expected JSON, found damaged text`,
    );
    return [];
  }
  const records: RateRecord[] = [];
  const add = (key: unknown, base: unknown, at: unknown) => {
    if (typeof key !== "string" || typeof at !== "number") return;
    if (!Number.isFinite(at)) return;
    records.push({
      key,
      base: typeof base === "string" ? base : "",
      at: Math.min(at, options.now),
    });
  };
  if (Array.isArray((parsed as { records?: unknown })?.records)) {
    for (
      const r of (parsed as { records: Record<string, unknown>[] }).records
    ) {
      add(r?.key, r?.base, r?.at);
    }
  } else if (parsed !== null && typeof parsed === "object") {
    // The first version's shape: { program: [times] }.
    for (const [key, times] of Object.entries(parsed)) {
      if (Array.isArray(times)) { for (const t of times) add(key, "", t); }
    }
  }
  return records.sort((a, b) => a.at - b.at);
}

/**
 * Writes the records (atomically), forgetting old ones. A failure is a
 * warning.
 *
 * @param directory The store.
 * @param records The records to keep.
 * @param options The time now, and where to warn.
 *
 * @example Usage
 * ```ts
 * import { readRateState, writeRateState } from "./rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * const now = Date.UTC(2026, 0, 8);
 * const warnings: string[] = [];
 * await writeRateState(store, [
 *   // Older than a week: forgotten.
 *   { key: "/usr/bin/app", base: "Core_old", at: now - 8 * 86_400_000 },
 *   { key: "/usr/bin/app", base: "Core_new", at: now - 1000 },
 * ], { now, warnings });
 * assert.deepEqual(await readRateState(store, { now, warnings }), [
 *   { key: "/usr/bin/app", base: "Core_new", at: now - 1000 },
 * ]);
 * assert.deepEqual(warnings, []);
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function writeRateState(
  directory: string,
  records: readonly RateRecord[],
  options: { now: number; warnings: string[] },
): Promise<void> {
  const path = join(directory, STATE_FILE);
  // The newest are kept, whatever order the records came in.
  const kept = records.filter((r) => options.now - r.at < MAX_AGE_MS)
    .sort((a, b) => a.at - b.at)
    .slice(-MAX_RECORDS);
  try {
    await writeFileAtomic(
      path,
      ReadableStream.from([
        new TextEncoder().encode(
          JSON.stringify({ version: 2, records: kept }),
        ),
      ]),
      { mode: 0o600, replace: true },
    );
  } catch (error) {
    options.warnings.push(
      `Cannot update the rate state '${path}': ${errorText(error)}`,
    );
  }
}
