/**
 * The store as the policy sees it, read under the lock: every entry with
 * the bookkeeping its sidecar holds (storing order, stored time, the
 * capturing process while under way), and the tidying that reading
 * implies: a capture whose process is gone is marked interrupted, and
 * temporary files no live capture owns are removed.
 *
 * @module
 */

import { join } from "node:path";
import type { CaptureRecord, CoreMetadata } from "./metadata.ts";
import { writeFileAtomic } from "../fs/mod.ts";
import { type ClockReading, isAlive } from "../process/mod.ts";
import { listStore, removeFiles, type StoreEntry } from "./store.ts";
import type { PolicyEntry } from "./policy.ts";
import { compact, errorText } from "../util/mod.ts";

/** An archive's file name as a sidecar names it. */
const ENTRY_NAME = /^Core_[^/]*\.(gz|zz)$/;
/** Largest sidecar read. */
export const MAX_SIDECAR_BYTES = 1 << 20;
/** A temporary file with no record of its capture is removed after this. */
const ORPHAN_GRACE_MS = 60_000;

/** An entry with its sidecar and its policy view. */
export interface LedgerEntry extends PolicyEntry {
  /** Its files in the store. */
  entry: StoreEntry;
  /** The sidecar, when present and readable. */
  metadata?: Partial<CoreMetadata>;
}

/** What reading the ledger found and did. */
export interface Ledger {
  /** The entries, oldest first. */
  entries: LedgerEntry[];
  /** Captures found dead and marked interrupted. */
  interrupted: string[];
  /** Temporary files removed. */
  removedTemporaries: string[];
}

/**
 * Reads a sidecar: bounded, regular files only. Undefined when missing,
 * too large or not JSON.
 *
 * @example Usage
 * ```ts
 * import { readSidecar } from "./ledger.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/good.json`, '{"pid": 42, "comm": "app"}');
 * await Deno.writeTextFile(`${dir}/damaged.json`, '{"pid": 4');
 * await Deno.writeTextFile(`${dir}/list.json`, "[1, 2]");
 * assert.deepEqual(await readSidecar(`${dir}/good.json`), { pid: 42, comm: "app" });
 * assert.equal(await readSidecar(`${dir}/damaged.json`), undefined);
 * assert.equal(await readSidecar(`${dir}/list.json`), undefined);
 * assert.equal(await readSidecar(`${dir}/missing.json`), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The sidecar's path.
 * @returns The parsed object.
 */
export async function readSidecar(
  path: string,
): Promise<Partial<CoreMetadata> | undefined> {
  try {
    using file = await Deno.open(path, { read: true });
    const { size, isFile } = await file.stat();
    if (!isFile || size > MAX_SIDECAR_BYTES) return undefined;
    const bytes = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const n = await file.read(bytes.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    const parsed = JSON.parse(
      new TextDecoder().decode(bytes.subarray(0, filled)),
    );
    return parsed && typeof parsed === "object" && !Array.isArray(parsed)
      ? parsed
      : undefined;
  } catch {
    return undefined;
  }
}

/** The capture record of a sidecar, when it has a well-formed one. */
function captureOf(
  metadata: Partial<CoreMetadata> | undefined,
): CaptureRecord | undefined {
  const c = metadata?.capture;
  if (c === null || typeof c !== "object") return undefined;
  if (
    !Number.isSafeInteger(c.seq) || c.seq < 0 ||
    typeof c.stored_wall_ms !== "number" ||
    !Number.isFinite(c.stored_wall_ms)
  ) {
    return undefined;
  }
  return c;
}

/**
 * Reads the store under its lock, marks captures whose process is gone as
 * interrupted, and removes temporary files that no live capture owns.
 *
 * @param directory The store.
 * @param options The clocks now, and where to warn.
 * @returns The entries and what was tidied.
 *
 * @example Usage
 * ```ts
 * import { readLedger, readSidecar } from "./ledger.ts";
 * import { readClocks } from "../process/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // A capture whose process is gone (this pid, started at another time),
 * // and the temporary archive it left.
 * const store = await Deno.makeTempDir();
 * const clocks = readClocks();
 * const base = "Core_20260101_000000";
 * await Deno.writeTextFile(
 *   `${store}/${base}.json`,
 *   JSON.stringify({
 *     archive: null,
 *     capture: {
 *       state: "capturing",
 *       seq: 1,
 *       stored_at: new Date(clocks.wallMs).toISOString(),
 *       stored_wall_ms: clocks.wallMs,
 *       uptime_ms: clocks.uptimeMs,
 *       boot_id: clocks.bootId,
 *       rate_key: "/usr/bin/app",
 *       owner: { pid: Deno.pid, start_ticks: -1, boot_id: clocks.bootId },
 *     },
 *   }),
 * );
 * await Deno.writeFile(`${store}/.${base}.gz.tmp-0123abcd`, new Uint8Array(10));
 *
 * const warnings: string[] = [];
 * const ledger = await readLedger(store, { clocks, warnings });
 * assert.deepEqual(ledger.interrupted, [base]);
 * assert.deepEqual(ledger.removedTemporaries, [`.${base}.gz.tmp-0123abcd`]);
 * assert.equal(ledger.entries[0]?.live, false);
 * assert.equal(ledger.entries[0]?.archive, false);
 * const record = await readSidecar(`${store}/${base}.json`);
 * assert.equal(record?.capture?.state, "interrupted");
 * assert.deepEqual(warnings, []);
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function readLedger(
  directory: string,
  options: { clocks: ClockReading; warnings: string[] },
): Promise<Ledger> {
  const ledger: Ledger = {
    entries: [],
    interrupted: [],
    removedTemporaries: [],
  };
  for (const entry of await listStore(directory)) {
    let metadata = entry.metadata === undefined
      ? undefined
      : await readSidecar(join(directory, entry.metadata));
    let capture = captureOf(metadata);
    let live = false;
    if (capture?.state === "capturing") {
      live = ownerAlive(capture);
      if (!live) {
        // The owner may have finished its record between the read and the
        // check: what it wrote before it went is read again, and it can
        // write nothing more.
        metadata = await readSidecar(join(directory, entry.metadata!));
        capture = captureOf(metadata);
      }
    }
    // The listing came first: an archive its capture published since is
    // there all the same (its record, read after, names it).
    if (
      entry.archive === undefined && typeof metadata?.archive === "string" &&
      ENTRY_NAME.test(metadata.archive) &&
      metadata.archive.startsWith(`${entry.base}.`)
    ) {
      const info = await Deno.lstat(join(directory, metadata.archive)).catch(
        () => undefined,
      );
      if (info?.isFile) {
        entry.archive = metadata.archive;
        entry.files.push(metadata.archive);
        entry.bytes += info.size;
      }
    }
    let died = false;
    if (!live && capture?.state === "capturing") {
      if (metadata !== undefined) {
        capture = await markInterrupted(directory, entry, metadata, capture)
          .catch((error) => {
            options.warnings.push(
              `Cannot mark ${entry.base} interrupted: ${errorText(error)}`,
            );
            return capture;
          });
        ledger.interrupted.push(entry.base);
        died = true;
      }
    }
    if (!live && entry.temporaries.length > 0) {
      // A finished capture may still be replacing its record, and a record
      // of an older version says nothing of its capture: their recent
      // temporary files stay a while. A dead capture's go at once.
      const recent = options.clocks.wallMs - entry.mtime.getTime() <
        ORPHAN_GRACE_MS;
      if (died || !recent) {
        const removed = await removeFiles(directory, entry.temporaries);
        ledger.removedTemporaries.push(...removed);
        entry.files = entry.files.filter((f) => !entry.temporaries.includes(f));
        entry.temporaries = [];
      }
    }
    if (entry.files.length === 0) continue;
    const stored = capture === undefined ? { wallMs: entry.mtime.getTime() } : {
      wallMs: capture.stored_wall_ms,
      uptimeMs: capture.uptime_ms,
      bootId: capture.boot_id,
    };
    ledger.entries.push({
      entry,
      ...compact({ metadata }),
      base: entry.base,
      archive: entry.archive !== undefined ||
        (live && typeof metadata?.archive === "string"),
      bytes: entry.bytes,
      live,
      seq: capture?.seq ?? 0,
      stored,
      nameTime: entry.time.getTime(),
      claim: live ? capture?.claim ?? 0 : 0,
      ...compact({ rateKey: capture?.rate_key, protects: capture?.protects }),
    });
  }
  return ledger;
}

/** Whether the process that owns a capture still runs. */
function ownerAlive(capture: CaptureRecord): boolean {
  const owner = capture.owner;
  return owner !== undefined && isAlive({
    pid: owner.pid,
    startTicks: owner.start_ticks,
    bootId: owner.boot_id,
  });
}

/** Rewrites the sidecar of a capture whose process is gone. */
async function markInterrupted(
  directory: string,
  entry: StoreEntry,
  metadata: Partial<CoreMetadata>,
  capture: CaptureRecord,
): Promise<CaptureRecord> {
  const { owner: _owner, claim: _claim, protects: _protects, ...rest } =
    capture;
  const done: CaptureRecord = { ...rest, state: "interrupted" };
  const archive = entry.archive ?? null;
  const record = {
    ...metadata,
    archive,
    reason: archive === null
      ? "the capture ended before it finished (it was killed, or the power failed): nothing of the core was kept"
      : "the capture ended after storing the archive, before its record was complete",
    capture: done,
  };
  await rewriteSidecar(join(directory, entry.metadata!), record);
  return done;
}

/**
 * Replaces a sidecar atomically, keeping its permission bits.
 *
 * @example Usage
 * ```ts
 * import { readSidecar, rewriteSidecar } from "./ledger.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/Core_20260101_000000.json`;
 * await Deno.writeTextFile(path, '{"pid": 42}', { mode: 0o640 });
 * await Deno.chmod(path, 0o640);
 * await rewriteSidecar(path, { pid: 42, reason: "removed for room" });
 * assert.deepEqual(await readSidecar(path), { pid: 42, reason: "removed for room" });
 * assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The sidecar.
 * @param record The new record.
 */
export async function rewriteSidecar(
  path: string,
  record: unknown,
): Promise<void> {
  const mode = (await Deno.lstat(path)).mode ?? 0o600;
  await writeFileAtomic(
    path,
    ReadableStream.from([
      new TextEncoder().encode(JSON.stringify(record, null, 2) + "\n"),
    ]),
    { mode: mode & 0o640, replace: true },
  );
}

/**
 * Re-anchors entries whose stored time cannot be right to now: their
 * sidecar's stored time, or for entries of older versions their files'
 * modification time.
 *
 * @param directory The store.
 * @param entries The entries to re-anchor.
 * @param clocks The clocks now.
 *
 * @example Usage
 * ```ts
 * import { reanchorEntries, readLedger } from "./ledger.ts";
 * import { readClocks } from "../process/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // A core of an older version, no record, its file dated 1970 (the clock
 * // was unset when it was stored).
 * const store = await Deno.makeTempDir();
 * const path = `${store}/Core_19700101_000000.gz`;
 * await Deno.writeFile(path, new Uint8Array(10));
 * await Deno.utime(path, 0, 0);
 * const clocks = readClocks();
 * const ledger = await readLedger(store, { clocks, warnings: [] });
 * await reanchorEntries(store, ledger.entries, clocks);
 * const mtime = (await Deno.stat(path)).mtime!.getTime();
 * assert.ok(Math.abs(mtime - clocks.wallMs) < 1000);
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function reanchorEntries(
  directory: string,
  entries: readonly LedgerEntry[],
  clocks: ClockReading,
): Promise<void> {
  const now = new Date(clocks.wallMs);
  for (const item of entries) {
    const capture = captureOf(item.metadata);
    if (capture !== undefined && item.entry.metadata !== undefined) {
      const record = {
        ...item.metadata,
        capture: {
          ...capture,
          stored_at: now.toISOString(),
          stored_wall_ms: clocks.wallMs,
          uptime_ms: clocks.uptimeMs,
          boot_id: clocks.bootId,
        },
      };
      await rewriteSidecar(join(directory, item.entry.metadata), record)
        .catch(() => {});
      continue;
    }
    for (const name of item.entry.files) {
      await Deno.utime(join(directory, name), now, now).catch(() => {});
    }
  }
}
