/**
 * The stored cores as a person looks for them: each entry with its
 * sidecar, filtered by program, pid and time, and found by an ID (a file
 * name, or a program name meaning its newest core), as coredumpctl does.
 *
 * @module
 */

import { basename, join } from "node:path";
import { FileAccessError, fsReason } from "../fs/mod.ts";
import type { CoreMetadata } from "./metadata.ts";
import { listStore, type StoreEntry } from "./store.ts";
import { readSidecar } from "./ledger.ts";

/** No stored core matches an ID. */
export class CoreNotFoundError extends Error {
  /** Creates the error for the ID and the store. */
  constructor(id: string, directory: string) {
    super(
      `Cannot find a core '${id}' in '${directory}': expected a file name of the store or the name of a program with a stored core (see 'gzcoredump list')`,
    );
    this.name = "CoreNotFoundError";
  }
}

/** The store cannot be listed: missing, not a directory, or not readable. */
export class StoreAccessError extends FileAccessError {
  /** Creates the error for the store and what listing it threw. */
  constructor(directory: string, cause: unknown) {
    super(
      `Cannot list the store '${directory}': ${
        fsReason(systemError(cause))
      }, expected the directory cores are stored in (-p)`,
      directory,
      { cause },
    );
    this.name = "StoreAccessError";
  }
}

/** The system's error under the store's own wrappers, for its reason alone. */
function systemError(error: unknown): unknown {
  let inner = error;
  for (
    let depth = 0;
    inner instanceof FileAccessError && inner.cause !== undefined && depth < 3;
    depth++
  ) {
    inner = inner.cause;
  }
  return inner;
}

/** A stored core and what its sidecar says. */
export interface CoreRecord {
  /** The store it is in. */
  directory: string;
  /** Its files in the store. */
  entry: StoreEntry;
  /** The sidecar, when present and readable. */
  metadata?: Partial<CoreMetadata>;
}

/** Filters for {@linkcode readCatalog}. */
export interface CatalogFilter {
  /** A program: its command name, `-a` name, or executable's file name. */
  program?: string;
  /** Only cores of this pid (as the sidecar gives it). */
  pid?: number;
  /** Only cores at or after this time. */
  since?: Date;
  /** Only crashes with this signature (its id, or the start of it). */
  signature?: string;
  /** Only cores at or before this time. */
  until?: Date;
  /** Only cores of this user id. */
  uid?: number;
  /** Only cores of this signal (its number). */
  signal?: number;
  /** Only cores of this executable (its full path). */
  exe?: string;
}

/**
 * Lists the stored cores with their sidecars, oldest first.
 *
 * @param directory The store.
 * @param filter Program, pid and time filters.
 * @returns The matching records.
 * @throws {StoreAccessError} When the store cannot be listed.
 *
 * @example Usage
 * ```ts
 * import { readCatalog, StoreAccessError } from "./catalog.ts";
 * import assert from "node:assert/strict";
 *
 * // A store of two cores of a.out and one of b.out, with their sidecars.
 * const store = await Deno.makeTempDir();
 * const crashes = [
 *   ["Core_20260101_000000_a.out", { comm: "a.out", pid: 10 }],
 *   ["Core_20260102_000000_b.out", { comm: "b.out", pid: 20 }],
 *   ["Core_20260103_000000_a.out", { comm: "a.out", pid: 30 }],
 * ] as const;
 * for (const [base, sidecar] of crashes) {
 *   await Deno.writeFile(`${store}/${base}.gz`, new Uint8Array(20));
 *   await Deno.writeTextFile(`${store}/${base}.json`, JSON.stringify(sidecar));
 * }
 * const all = await readCatalog(store);
 * assert.deepEqual(all.map((r) => r.metadata?.pid), [10, 20, 30]);
 * const mine = await readCatalog(store, {
 *   program: "a.out",
 *   since: new Date(Date.UTC(2026, 0, 2)),
 * });
 * assert.deepEqual(mine.map((r) => r.entry.archive), [
 *   "Core_20260103_000000_a.out.gz",
 * ]);
 * await Deno.remove(store, { recursive: true });
 * await assert.rejects(readCatalog(store), StoreAccessError);
 * ```
 */
export async function readCatalog(
  directory: string,
  filter: CatalogFilter = {},
): Promise<CoreRecord[]> {
  let entries: StoreEntry[];
  try {
    entries = await listStore(directory);
  } catch (error) {
    throw new StoreAccessError(directory, error);
  }
  const records: CoreRecord[] = [];
  for (const entry of entries) {
    // Only temporary files: a capture under way, or one that died.
    if (
      entry.archive === undefined && entry.metadata === undefined &&
      entry.uuid === undefined
    ) {
      continue;
    }
    const record: CoreRecord = { directory, entry };
    const metadata = entry.metadata === undefined
      ? undefined
      : await readSidecar(join(directory, entry.metadata));
    if (metadata !== undefined) record.metadata = metadata;
    if (filter.since !== undefined && entry.time < filter.since) continue;
    if (filter.until !== undefined && entry.time > filter.until) continue;
    if (filter.uid !== undefined && metadata?.uid !== filter.uid) continue;
    if (filter.signal !== undefined && metadata?.signal !== filter.signal) {
      continue;
    }
    if (
      filter.exe !== undefined &&
      metadata?.exe?.replace(/ \(deleted\)$/, "") !== filter.exe
    ) continue;
    if (filter.pid !== undefined && metadata?.pid !== filter.pid) continue;
    if (
      filter.signature !== undefined &&
      !(metadata?.signature?.id ?? "").startsWith(filter.signature)
    ) continue;
    if (filter.program !== undefined && !isProgram(record, filter.program)) {
      continue;
    }
    records.push(record);
  }
  return records;
}

/**
 * Finds a stored core by ID: a file name of the store (with or without its
 * extension), or a program name meaning its newest core.
 *
 * @param directory The store.
 * @param id The ID.
 * @returns The record.
 * @throws {CoreNotFoundError} When nothing matches.
 * @throws {StoreAccessError} When the store cannot be listed.
 *
 * @example Usage
 * ```ts
 * import { CoreNotFoundError, findCore } from "./catalog.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * for (const base of ["Core_20260101_000000", "Core_20260102_000000"]) {
 *   await Deno.writeFile(`${store}/${base}.gz`, new Uint8Array(20));
 *   await Deno.writeTextFile(
 *     `${store}/${base}.json`,
 *     JSON.stringify({ exe: "/usr/bin/app" }),
 *   );
 * }
 * // By file name, with or without its extension.
 * const first = await findCore(store, "Core_20260101_000000.gz");
 * assert.equal(first.entry.base, "Core_20260101_000000");
 * // By program: its newest core.
 * const newest = await findCore(store, "app");
 * assert.equal(newest.entry.base, "Core_20260102_000000");
 * await assert.rejects(findCore(store, "other"), CoreNotFoundError);
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function findCore(
  directory: string,
  id: string,
): Promise<CoreRecord> {
  const records = await readCatalog(directory);
  const name = basename(id);
  const byName = records.find((r) =>
    r.entry.base === name || r.entry.files.includes(name)
  );
  if (byName !== undefined) return byName;
  const byProgram = records.filter((r) => isProgram(r, id));
  const newest = byProgram.at(-1);
  if (newest === undefined) throw new CoreNotFoundError(id, directory);
  return newest;
}

/** True when a record is of the program `name`. */
function isProgram(record: CoreRecord, name: string): boolean {
  const m = record.metadata;
  const exe = m?.exe?.replace(/ \(deleted\)$/, "");
  return m?.comm === name || m?.argument === name ||
    (exe !== undefined && (exe === name || basename(exe) === name));
}
