/**
 * The crash store: the directory cores are written to. It holds private
 * memory, so it is created `0700` and never reached through a symlink; a
 * directory that others can write to or another user owns is refused.
 *
 * A stored core is an entry: `Core_<time>[_<arg>][-N].gz` (or `.zz`) with its
 * `.txt` and `.json`. Clean-up lists the directory without following links,
 * considers only regular files named like the tool's own, never recurses,
 * never removes the entry just written, and runs under a lock.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FileAccessError, fsReason } from "./atomic_file.ts";

/** The store directory is unusable: a symlink, not a directory, or not creatable. */
export class StoreDirectoryError extends FileAccessError {
  /** Creates the error for the directory. */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, path, options);
    this.name = "StoreDirectoryError";
  }
}

/**
 * Makes sure `path` is a directory that may hold cores: creates it (and its
 * parents) with mode `0700` when missing; refuses a symlink or a
 * non-directory. An existing directory keeps its mode.
 *
 * @param path The store directory.
 * @throws {StoreDirectoryError} When the directory cannot be used.
 *
 * @example Usage
 * ```ts ignore
 * import { preparePrivateDirectory } from "./store.ts";
 * await preparePrivateDirectory("/var/crash");
 * ```
 */
export async function preparePrivateDirectory(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new StoreDirectoryError(
        `Cannot use store directory '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
    try {
      await Deno.mkdir(path, { recursive: true, mode: 0o700 });
      await Deno.chmod(path, 0o700);
    } catch (error) {
      throw new StoreDirectoryError(
        `Cannot create store directory '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
    info = await Deno.lstat(path);
  }
  if (info.isSymlink) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': it is a symbolic link, expected a real directory`,
      path,
    );
  }
  if (!info.isDirectory) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': it is not a directory`,
      path,
    );
  }
  // Cores are private memory: a directory others can write to (and so
  // plant links or files in) or that another user owns is not safe.
  const euid = Deno.uid();
  if (info.uid !== euid && info.uid !== 0) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': it is owned by uid ${info.uid}, expected root${
        euid === 0 ? "" : ` or uid ${euid}`
      }`,
      path,
    );
  }
  // Whoever may rename entries of the parent may swap the store for a link
  // between our checks and our writes: only a sticky or private parent.
  const parent = dirname(path);
  if (parent !== path) {
    const above = await Deno.stat(parent);
    if (
      above.mode !== null && (above.mode & 0o022) !== 0 &&
      (above.mode & 0o1000) === 0
    ) {
      throw new StoreDirectoryError(
        `Cannot use store directory '${path}': its parent '${parent}' has mode ${
          (above.mode & 0o7777).toString(8).padStart(4, "0")
        }, expected it not writable by others (or sticky, like /tmp)`,
        path,
      );
    }
  }
  if (info.mode !== null && (info.mode & 0o022) !== 0) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': its mode is ${
        (info.mode & 0o7777).toString(8).padStart(4, "0")
      }, expected no group or world write permission (like 0700)`,
      path,
    );
  }
}

/**
 * Checks that files can be created in a directory (not a read-only mount,
 * not out of inodes) by creating and removing an empty hidden file.
 *
 * @param path The directory.
 * @throws {StoreDirectoryError} When no file can be created there.
 *
 * @example Usage
 * ```ts ignore
 * import { checkWritable } from "./store.ts";
 * await checkWritable("/var/crash");
 * ```
 */
export async function checkWritable(path: string): Promise<void> {
  let probe: string;
  try {
    probe = await Deno.makeTempFile({
      dir: path,
      prefix: ".gzcoredump-probe-",
    });
  } catch (error) {
    throw new StoreDirectoryError(
      `Cannot create files in store directory '${path}': ${fsReason(error)}`,
      path,
      { cause: error },
    );
  }
  await Deno.remove(probe);
}

/** A file name the tool writes into the store. */
const ENTRY_FILE =
  /^(Core_\d{8}_\d{6}(?:_[^/]*?)?(?:-\d+)?)\.(gz|zz|json|txt)$/;
/** The tool's temporary files: `.<final name>.tmp-<8 hex>`. */
const TEMP_FILE = /^\.Core_.*\.tmp-[0-9a-f]{8}$/;
/** The lock file that serialises clean-up and the rate state. */
const LOCK_FILE = ".gzcoredump.lock";

/** One stored core: its archive and sidecars. */
export interface StoreEntry {
  /** `Core_<time>[_<arg>][-N]`. */
  base: string;
  /** The archive's file name, when it is there. */
  archive?: string;
  /** The sidecar's file name, when it is there. */
  metadata?: string;
  /** The `.uuid` copy's file name, when it is there. */
  uuid?: string;
  /** Every file of the entry. */
  files: string[];
  /** Bytes used by all its files. */
  bytes: number;
  /** The newest modification time of its files. */
  mtime: Date;
  /** The crash time in its name (UTC). */
  time: Date;
}

/**
 * Lists the stored cores, oldest first. Only regular files named like the
 * tool's own count; links, directories and anything else are ignored.
 *
 * @param directory The store.
 * @returns The entries, oldest first.
 *
 * @example Usage
 * ```ts ignore
 * import { listStore } from "./store.ts";
 * for (const entry of await listStore("/var/crash")) entry.archive;
 * ```
 */
export async function listStore(directory: string): Promise<StoreEntry[]> {
  const entries = new Map<string, StoreEntry>();
  for await (const item of Deno.readDir(directory)) {
    if (!item.isFile || item.isSymlink) continue;
    const match = ENTRY_FILE.exec(item.name);
    if (match === null) continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(join(directory, item.name));
    } catch {
      continue; // Removed meanwhile.
    }
    if (!info.isFile) continue;
    const base = match[1]!;
    const entry = entries.get(base) ?? {
      base,
      files: [],
      bytes: 0,
      mtime: new Date(0),
      time: nameTime(base),
    };
    entry.files.push(item.name);
    entry.bytes += info.size;
    if (info.mtime && info.mtime > entry.mtime) entry.mtime = info.mtime;
    const kind = match[2];
    if (kind === "gz" || kind === "zz") entry.archive = item.name;
    else if (kind === "json") entry.metadata = item.name;
    else entry.uuid = item.name;
    entries.set(base, entry);
  }
  return [...entries.values()].sort((a, b) =>
    a.time.getTime() - b.time.getTime() ||
    a.mtime.getTime() - b.mtime.getTime() ||
    a.base.localeCompare(b.base, "en", { numeric: true })
  );
}

/** The UTC time in a `Core_YYYYMMDD_HHMMSS` name. */
function nameTime(base: string): Date {
  const m = /^Core_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})/.exec(base)!;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

/** The store's file system: its size and the space still free. */
export async function fileSystemSpace(
  directory: string,
): Promise<{ total: number; free: number }> {
  const info = await statfs(directory);
  return { total: info.blocks * info.bsize, free: info.bavail * info.bsize };
}

/** Limits {@linkcode enforceLimits} applies. */
export interface StoreLimits {
  /** Most bytes all entries may use. */
  maxUse?: number;
  /** Free space to leave, in bytes. */
  keepFree?: number;
  /** Most entries. */
  maxCount?: number;
  /** Entries older than this go. */
  maxAgeMs?: number;
  /** Bytes about to be written, to make room for. */
  reserve?: number;
}

/** What {@linkcode enforceLimits} removed, and why. */
export interface Removal {
  base: string;
  reason: string;
}

/**
 * Removes the oldest entries until the store is within its limits. The
 * entry named `keep` (the one just written) is never removed.
 *
 * @param directory The store.
 * @param limits The limits.
 * @param options `keep`: an entry base that must stay; `now`: the time.
 * @returns What was removed and why.
 */
export async function enforceLimits(
  directory: string,
  limits: StoreLimits,
  options: { keep?: string; now?: Date } = {},
): Promise<Removal[]> {
  const now = options.now ?? new Date();
  const removed: Removal[] = [];
  const all = await listStore(directory);
  const entries = all.filter((e) => e.base !== options.keep);
  const keptCount = options.keep === undefined ? 0 : 1;
  const space = await fileSystemSpace(directory);
  const maxUse = limits.maxUse ?? Infinity;
  const keepFree = limits.keepFree ?? 0;
  const keptBytes = all.find((e) => e.base === options.keep)?.bytes ?? 0;
  let used = entries.reduce((n, e) => n + e.bytes, 0) + keptBytes;
  let free = space.free;
  const reserve = limits.reserve ?? 0;
  while (entries.length > 0) {
    const oldest = entries[0]!;
    let reason: string | undefined;
    if (
      limits.maxAgeMs !== undefined &&
      now.getTime() - oldest.time.getTime() > limits.maxAgeMs
    ) {
      reason = `older than --max-age (${
        Math.round(limits.maxAgeMs / 86_400_000)
      } days)`;
    } else if (
      limits.maxCount !== undefined &&
      entries.length + keptCount + (reserve > 0 ? 1 : 0) > limits.maxCount
    ) {
      reason = `more than --max-count ${limits.maxCount} cores`;
    } else if (used + reserve > maxUse) {
      reason = `the store uses more than --max-use ${maxUse} bytes`;
    } else if (free - reserve < keepFree) {
      reason = `less than --keep-free ${keepFree} bytes free`;
    }
    if (reason === undefined) break;
    entries.shift();
    for (const name of oldest.files) {
      try {
        // Removing by name: a link planted since the listing is removed
        // itself, never followed (unlink does not follow links).
        await Deno.remove(join(directory, name));
      } catch {
        // Gone already.
      }
    }
    used -= oldest.bytes;
    free += oldest.bytes;
    removed.push({ base: oldest.base, reason });
  }
  return removed;
}

/**
 * Removes the tool's own temporary files left by a run that died (a power
 * cut during a dump), once they have not changed for `olderThanMs`.
 *
 * @returns The names removed.
 */
export async function removeStaleTemporaries(
  directory: string,
  options: { olderThanMs?: number; now?: Date } = {},
): Promise<string[]> {
  const { olderThanMs = 10 * 60_000, now = new Date() } = options;
  const removed: string[] = [];
  for await (const item of Deno.readDir(directory)) {
    if (!item.isFile || !TEMP_FILE.test(item.name)) continue;
    const path = join(directory, item.name);
    try {
      const info = await Deno.lstat(path);
      if (!info.isFile || !info.mtime) continue;
      if (now.getTime() - info.mtime.getTime() < olderThanMs) continue;
      await Deno.remove(path);
      removed.push(item.name);
    } catch {
      // Gone already.
    }
  }
  return removed;
}

/**
 * Runs `work` holding the store's lock (an exclusive `flock` on a hidden
 * file), so that parallel captures clean up and count one at a time.
 *
 * @param directory The store.
 * @param work What to do under the lock.
 * @returns What `work` returned.
 */
export async function withStoreLock<T>(
  directory: string,
  work: () => Promise<T>,
): Promise<T> {
  using lock = await Deno.open(join(directory, LOCK_FILE), {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  await lock.lock(true);
  try {
    return await work();
  } finally {
    await lock.unlock();
  }
}
