/**
 * Private: phase 1 of a capture, under the store lock: tidy, decide, remove,
 * name, reserve the sidecar, count the core for the rate limit.
 *
 * @module
 */

import { join } from "node:path";
import { formatExtension } from "../compress/mod.ts";
import {
  admit,
  type CaptureRecord,
  coreBaseName,
  fileSystemSpace,
  type LedgerEntry,
  readLedger,
  readRateState,
  reanchorEntries,
  type Removal,
  removeFiles,
  RESERVATION_BYTES,
  reserveSidecar,
  rewriteSidecar,
  type SidecarReservation,
  withStoreLock,
  writeRateState,
} from "../store/mod.ts";
import type { CoreReport } from "../elf/mod.ts";
import { compact } from "../util/mod.ts";
import { readClocks, selfIdentity } from "../process/mod.ts";
import { Capture } from "./_prepare.ts";
import { CoreSource } from "./_source.ts";
import { metadataOf } from "./_describe.ts";

/** Cores smaller than a page are not worth storing (RLIMIT_CORE 1 and 0). */
export const PAGE = 4096;

/** Room kept for the `.uuid` copy beside the archive. */
export const UUID_ROOM = 8192;

/** What admission decided. */
export interface Admitted {
  base: string;
  reservation: SidecarReservation;
  /** Why only metadata is kept; undefined when the core is stored. */
  reason?: string;
  record: CaptureRecord;
}

/**
 * Phase 1, under the store lock: tidy, decide, remove, name, reserve the
 * sidecar, and count the core for the rate limit when it is stored.
 */
export async function admitCapture(
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
export async function removeEntries(
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
export async function reserveName(
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
export function emptyReport(): CoreReport {
  return { size: 0, programs: [], modules: [], memory: [], truncated: false };
}

/** True when any of the names exists in the directory, as anything. */
export async function anyExists(
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
