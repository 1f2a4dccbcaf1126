/**
 * The store's policy, as pure decisions over a snapshot of the store taken
 * under its lock: which entries to remove, whether a new core may be
 * stored, and how many bytes of `--max-use` it may fill.
 *
 * The rules (every one counts the captures still under way):
 * - A capture under way ("live") is never removed, and neither is a core
 *   that was stored while another capture was under way, by that capture.
 * - `--max-count` counts archives; records of metadata only have their own
 *   bound (`--max-records`) and never cost an archive its place.
 * - `--max-use` is a ceiling: a capture claims room before it writes, in
 *   steps, removing older cores to make room; what cannot be claimed is not
 *   written (the core is cut there).
 * - Ages are measured from the time this tool stored an entry, by the time
 *   since boot within one boot and by the wall clock across boots; a stored
 *   time that cannot be right (before 2020, or in the future) is re-anchored
 *   to now, so that a clock that jumps neither removes fresh cores nor keeps
 *   one forever.
 * - The rate limit counts stored cores only.
 *
 * @module
 */

import type { ClockReading } from "../process/mod.ts";
import type { RateRecord } from "./rate_limit.ts";
import type { Rate } from "../util/mod.ts";
import { compact } from "../util/mod.ts";

/** Wall-clock times before this are taken for an unset clock. */
export const PLAUSIBLE_SINCE_MS: number = Date.UTC(2020, 0, 1);
/** A stored time this far ahead of the clock cannot be right. */
const FUTURE_SLACK_MS = 86_400_000;
/** Bytes of `--max-use` a capture claims at first, and at least per step. */
export const CLAIM_STEP = 8 << 20;
/** A capture gets no archive when it can claim less than this. */
export const MIN_CLAIM = 4096;

/** When an entry was stored, by the clocks of that moment. */
export interface StoredTime {
  /** The wall clock, milliseconds since the epoch. */
  wallMs: number;
  /** Milliseconds since boot, when recorded. */
  uptimeMs?: number;
  /** The boot it was stored in, when recorded. */
  bootId?: string;
}

/** An entry of the store as the policy sees it. */
export interface PolicyEntry {
  /** The entry's base name. */
  base: string;
  /** It has an archive, or is a live capture that is writing one. */
  archive: boolean;
  /** Bytes its files use now. */
  bytes: number;
  /** A capture under way, by a process still running. */
  live: boolean;
  /** Storing order: higher is newer; 0 for entries of older versions. */
  seq: number;
  /** When it was stored; undefined when not known at all. */
  stored?: StoredTime;
  /** The crash time in its name, the last tie-breaker. */
  nameTime: number;
  /** Live captures: the archive bytes claimed of `--max-use`. */
  claim: number;
  /** The program, for the rate limit. */
  rateKey?: string;
  /** Live captures: entries it must never remove (stored while it ran). */
  protects?: readonly number[];
}

/** The limits, resolved to numbers. */
export interface PolicyLimits {
  /** `--max-use`: most bytes all stored entries may use. */
  maxUse: number;
  /** `--keep-free`: bytes to leave free on the file system. */
  keepFree: number;
  /** `--max-count`: most cores (archives) kept. */
  maxCount: number;
  /** `--max-records`: most records of metadata only kept. */
  maxRecords: number;
  /** `--max-age`: entries older than this go, in milliseconds. */
  maxAgeMs: number;
  /** `--rate`: most cores per program per period. */
  rate: Rate;
}

/** An entry to remove, and why. */
export interface Removal {
  /** The entry's base name. */
  base: string;
  /** Why it goes, for the log: `older than --max-age (14 days)` ... */
  reason: string;
  /**
   * Remove the core only, and keep its record (saying it was removed and
   * why): cores go for room, their crash's record stays, within
   * `--max-records`.
   */
  keepRecord?: boolean;
}

/**
 * The room a capture claims at a time: 8 MiB, or a sixteenth of a small
 * store, so that captures running together share it.
 *
 * @example Usage
 * ```ts
 * import { claimStep } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(claimStep(10 * 1024 ** 3), 8 << 20);
 * assert.equal(claimStep(16 << 20), 1 << 20);
 * // Never below MIN_CLAIM, however small the store.
 * assert.equal(claimStep(1000), 4096);
 * ```
 *
 * @param maxUse The store's ceiling.
 * @returns Bytes per step.
 */
export function claimStep(maxUse: number): number {
  return Math.max(MIN_CLAIM, Math.min(CLAIM_STEP, Math.floor(maxUse / 16)));
}

/** What a new capture asks for. */
export interface AdmissionRequest {
  /** Why it cannot be stored whatever the store holds (empty, RLIMIT_CORE). */
  refused?: string;
  /** The program, for the rate limit. */
  rateKey: string;
  /** Bytes its sidecar reservation takes. */
  sidecarBytes: number;
  /** Free bytes on the store's file system. */
  free: number;
  /** The clocks now. */
  clocks: ClockReading;
  /** Stored cores of the program by the rate state. */
  history: readonly RateRecord[];
}

/** The admission's verdict. */
export interface Admission {
  /** Entries to remove first. */
  remove: Removal[];
  /** Entries whose stored time must be re-anchored to now. */
  reanchor: string[];
  /** Why only metadata is kept; undefined when the core is stored. */
  reason?: string;
  /** Archive bytes claimed of `--max-use` (0 for metadata only). */
  claim: number;
  /** The new entry's storing order. */
  seq: number;
  /** Entries the new capture must never remove. */
  protects: number[];
}

/**
 * How long ago an entry was stored, in milliseconds; undefined when its
 * stored time cannot be trusted (it must be re-anchored).
 *
 * @param stored When it was stored.
 * @param now The clocks now.
 * @returns Its age, or undefined.
 *
 * @example Usage
 * ```ts
 * import { entryAge } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * const now = { wallMs: Date.UTC(2026, 0, 2), uptimeMs: 5000, bootId: "b" };
 * // This boot: by the time since boot, whatever the wall clock said.
 * assert.equal(entryAge({ wallMs: 0, uptimeMs: 1000, bootId: "b" }, now), 4000);
 * // Another boot: by the wall clock.
 * assert.equal(
 *   entryAge({ wallMs: Date.UTC(2026, 0, 1), bootId: "a" }, now),
 *   86_400_000,
 * );
 * // 1970 in another boot: the clock was unset, the age is not known.
 * assert.equal(entryAge({ wallMs: 0, bootId: "a" }, now), undefined);
 * ```
 */
export function entryAge(
  stored: StoredTime,
  now: ClockReading,
): number | undefined {
  if (
    stored.bootId !== undefined && stored.bootId !== "" &&
    stored.bootId === now.bootId && stored.uptimeMs !== undefined &&
    stored.uptimeMs <= now.uptimeMs
  ) {
    return now.uptimeMs - stored.uptimeMs;
  }
  if (
    stored.wallMs < PLAUSIBLE_SINCE_MS ||
    stored.wallMs > now.wallMs + FUTURE_SLACK_MS ||
    now.wallMs < PLAUSIBLE_SINCE_MS
  ) {
    return undefined;
  }
  return Math.max(0, now.wallMs - stored.wallMs);
}

/** Oldest first: storing order, then the stored time, then the name. */
function byAge(a: PolicyEntry, b: PolicyEntry): number {
  return a.seq - b.seq ||
    (a.stored?.wallMs ?? 0) - (b.stored?.wallMs ?? 0) ||
    a.nameTime - b.nameTime ||
    a.base.localeCompare(b.base, "en", { numeric: true });
}

/** A duration in words, in the largest of `units` that divides it. */
function durationText(ms: number, units = ["days", "hours", "minutes"]) {
  const sizes: Record<string, number> = {
    days: 86_400_000,
    hours: 3_600_000,
    minutes: 60_000,
  };
  for (const unit of units) {
    if (ms % sizes[unit]! === 0) return `${ms / sizes[unit]!} ${unit}`;
  }
  return `${ms / 1000} seconds`;
}

/**
 * Decides on a new capture: what to remove, whether to store the core, and
 * the first claim of `--max-use`.
 *
 * @param entries The store's entries, live captures included.
 * @param request What the capture asks for.
 * @param limits The store's limits.
 * @returns The verdict.
 *
 * @example Usage
 * ```ts
 * import { admit } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * const clocks = { wallMs: Date.UTC(2026, 0, 1), uptimeMs: 1, bootId: "b" };
 * const verdict = admit([], {
 *   rateKey: "/usr/bin/app", sidecarBytes: 4096, free: 1e9, clocks, history: [],
 * }, {
 *   maxUse: 1e8, keepFree: 0, maxCount: 10, maxRecords: 10,
 *   maxAgeMs: 86_400_000, rate: { count: 5, periodMs: 3_600_000 },
 * });
 * // Stored, with a first claim of a sixteenth of --max-use (`claimStep`:
 * // at most 8 MiB).
 * assert.equal(verdict.reason, undefined);
 * assert.equal(verdict.claim, 1e8 / 16);
 * assert.equal(verdict.seq, 1);
 * assert.deepEqual(verdict.remove, []);
 * ```
 */
export function admit(
  entries: readonly PolicyEntry[],
  request: AdmissionRequest,
  limits: PolicyLimits,
): Admission {
  const { clocks } = request;
  const remove: Removal[] = [];
  const reanchor: string[] = [];
  const gone = new Set<string>();
  const drop = (entry: PolicyEntry, reason: string) => {
    gone.add(entry.base);
    remove.push({ base: entry.base, reason });
  };
  const sorted = [...entries].sort(byAge);
  const live = sorted.filter((e) => e.live);
  const seq = Math.max(0, ...entries.map((e) => e.seq)) + 1;
  const protects = live.map((e) => e.seq);

  // Age, by the time this tool stored each entry.
  for (const entry of sorted) {
    if (entry.live || entry.stored === undefined) continue;
    const age = entryAge(entry.stored, clocks);
    if (age === undefined) reanchor.push(entry.base);
    else if (age > limits.maxAgeMs) {
      drop(entry, `older than --max-age (${durationText(limits.maxAgeMs)})`);
    }
  }
  const present = () => sorted.filter((e) => !gone.has(e.base));

  let reason = request.refused ?? rateReason(sorted, request, limits);
  /** Cores that may go for room, oldest first: never live, never records. */
  const removable = () => present().filter((e) => !e.live && e.archive);
  const evict = (entries: readonly PolicyEntry[], why: string) => {
    for (const entry of entries) {
      gone.add(entry.base);
      remove.push({ base: entry.base, reason: why, keepRecord: true });
    }
  };
  if (reason === undefined) {
    // --max-count counts archives, those being written included; nothing
    // goes unless enough can go.
    const archives = present().filter((e) => e.archive).length;
    const excess = archives + 1 - limits.maxCount;
    if (excess > 0) {
      const candidates = removable();
      if (candidates.length < excess) {
        reason = `the store holds --max-count ${limits.maxCount} cores, ${
          live.filter((e) => e.archive).length
        } of them being captured now: metadata only`;
      } else {
        evict(
          candidates.slice(0, excess),
          `more than --max-count ${limits.maxCount} cores`,
        );
      }
    }
  }
  if (reason === undefined && request.free < limits.keepFree) {
    const candidates = removable();
    let free = request.free;
    let count = 0;
    while (free < limits.keepFree && count < candidates.length) {
      free += candidates[count++]!.bytes;
    }
    if (free < limits.keepFree) {
      reason =
        `only ${request.free} bytes free, --keep-free is ${limits.keepFree}: metadata only`;
    } else {
      evict(
        candidates.slice(0, count),
        `less than --keep-free ${limits.keepFree} bytes free`,
      );
    }
  }
  let claim = 0;
  if (reason === undefined) {
    // Make room for the first bytes only: older cores go as the core turns
    // out to need their room (extendClaim), not for what it might need.
    const candidates = removable();
    let room = roomLeft(present(), request.sidecarBytes, limits.maxUse);
    let count = 0;
    while (room < MIN_CLAIM && count < candidates.length) {
      room += candidates[count++]!.bytes;
    }
    if (room < MIN_CLAIM) {
      reason = live.length > 0
        ? `--max-use ${limits.maxUse} bytes is taken by the ${live.length} core(s) being captured now: metadata only`
        : `--max-use ${limits.maxUse} bytes leaves no room for a core: metadata only`;
    } else {
      evict(
        candidates.slice(0, count),
        `the store uses more than --max-use ${limits.maxUse} bytes`,
      );
      claim = Math.min(room, claimStep(limits.maxUse));
    }
  }
  // Records of metadata only: their own bound, and never an archive.
  // Cores removed above leave records too.
  const kept = new Map(
    remove.filter((r) => r.keepRecord).map((r) => [r.base, r]),
  );
  const records = sorted.filter((e) =>
    !e.live &&
    (kept.has(e.base) || (!e.archive && !gone.has(e.base)))
  );
  let excess = records.length + (reason === undefined ? 0 : 1) -
    limits.maxRecords;
  for (const record of records) {
    if (excess-- <= 0) break;
    const removal = kept.get(record.base);
    if (removal !== undefined) removal.keepRecord = false;
    else drop(record, `more than --max-records ${limits.maxRecords} records`);
  }
  return {
    remove,
    reanchor: reanchor.filter((base) => !gone.has(base)),
    ...compact({ reason }),
    claim,
    seq,
    protects,
  };
}

/** Bytes of `--max-use` nobody uses or claims. */
function roomLeft(
  entries: readonly PolicyEntry[],
  sidecarBytes: number,
  maxUse: number,
): number {
  let used = sidecarBytes;
  for (const entry of entries) {
    used += entry.live ? Math.max(entry.bytes, entry.claim) : entry.bytes;
  }
  return maxUse - used;
}

/** Why the rate limit refuses the program's core, or undefined. */
function rateReason(
  entries: readonly PolicyEntry[],
  request: AdmissionRequest,
  limits: PolicyLimits,
): string | undefined {
  const { rate } = limits;
  const stored = new Set<string>();
  // A record of a core that was not stored after all (its capture was
  // killed, say) does not count.
  const unstored = new Set(
    entries.filter((e) => !e.archive && !e.live).map((e) => e.base),
  );
  let count = 0;
  for (const record of request.history) {
    if (record.key !== request.rateKey || unstored.has(record.base)) continue;
    if (request.clocks.wallMs - record.at >= rate.periodMs) continue;
    if (record.base !== "") stored.add(record.base);
    count++;
  }
  for (const entry of entries) {
    if (entry.rateKey !== request.rateKey || !entry.archive) continue;
    if (stored.has(entry.base)) continue;
    const age = entry.live || entry.stored === undefined
      ? 0
      : entryAge(entry.stored, request.clocks) ?? 0;
    if (age < rate.periodMs) count++;
  }
  if (count < rate.count) return undefined;
  return `more than ${rate.count} cores of '${request.rateKey}' within ${
    durationText(rate.periodMs, ["minutes"])
  } (--rate): metadata only`;
}

/**
 * A live capture needs more room: removes the oldest cores it may remove
 * (never a live one, never one it protects, never a newer one) until `need`
 * more bytes fit under `--max-use` or none is left, and grants up to `want`
 * of what fits. Their records stay.
 *
 * @param entries The store's entries, the asking capture included.
 * @param self The asking capture's base name.
 * @param need The bytes it must have to go on.
 * @param options `want`: the bytes it would like (at least `need`);
 * `maxUse`: the store's ceiling.
 * @returns What to remove, and the bytes granted (less than `need` when
 * nothing more may go).
 *
 * @example Usage
 * ```ts
 * import { extendClaim } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * const me = {
 *   base: "Core_b", archive: true, bytes: 10, live: true, seq: 2,
 *   nameTime: 0, claim: 100,
 * };
 * const old = { ...me, base: "Core_a", live: false, seq: 1, claim: 0, bytes: 50 };
 * const { remove, grant } = extendClaim([old, me], "Core_b", 20, {
 *   want: 40, maxUse: 160,
 * });
 * // The older core goes, its record stays, and all that was wanted fits.
 * assert.deepEqual(remove.map((r) => [r.base, r.keepRecord]), [["Core_a", true]]);
 * assert.equal(grant, 40);
 * ```
 */
export function extendClaim(
  entries: readonly PolicyEntry[],
  self: string,
  need: number,
  options: { want: number; maxUse: number },
): { remove: Removal[]; grant: number } {
  const { maxUse } = options;
  const want = Math.max(need, options.want);
  const me = entries.find((e) => e.base === self);
  const protects = new Set(me?.protects ?? []);
  const remove: Removal[] = [];
  let present = [...entries].sort(byAge);
  const room = () => roomLeft(present, 0, maxUse);
  const removable = present.filter((e) =>
    !e.live && e.archive && e.base !== self && !protects.has(e.seq) &&
    e.seq < (me?.seq ?? 0)
  );
  // The newest core wins: older ones go while it needs room, and a core
  // that alone is larger than the store goes in alone, cut at the limit.
  let reachable = room();
  let count = 0;
  while (reachable < need && count < removable.length) {
    reachable += removable[count++]!.bytes;
  }
  for (const oldest of removable.slice(0, count)) {
    remove.push({
      base: oldest.base,
      reason: `the store uses more than --max-use ${maxUse} bytes`,
      keepRecord: true,
    });
    present = present.filter((e) => e !== oldest);
  }
  return { remove, grant: Math.max(0, Math.min(want, room())) };
}
