/**
 * The crash store: the directory cores are written to. It holds private
 * memory, so it is created `0700` and never reached through a path that
 * anyone but root could change: every directory above it is checked up to
 * `/` (owned by root, not writable by group or others unless sticky, like
 * `/tmp`), and a symlink on the way is followed only when root owns it.
 *
 * A stored core is an entry: `Core_<time>[_<arg>][-N].gz` (or `.zz`) with its
 * `.txt` and `.json`, and while it is being captured, its hidden temporary
 * files. Clean-up lists the directory without following links, considers
 * only regular files named like the tool's own, never recurses, and runs
 * under a lock.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { FileAccessError, fsReason } from "../fs/mod.ts";
import { errorText } from "../util/mod.ts";

/** The store directory is unusable: a symlink, not a directory, or not creatable. */
export class StoreDirectoryError extends FileAccessError {
  /** Creates the error for the directory. */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, path, options);
    this.name = "StoreDirectoryError";
  }
}

/** Most symlinks followed on the way to the store. */
const MAX_LINKS = 32;

/**
 * Makes sure `path` is a directory that may hold cores: creates it, and
 * any missing directory above it, with mode `0700`; refuses a symlink, a
 * non-directory, a directory another user owns or others may write to, and
 * a path through a directory that anyone but root could rename things in.
 * An existing directory keeps its mode.
 *
 * @param path The store directory, an absolute path.
 * @throws {StoreDirectoryError} When the directory cannot be used.
 *
 * @example Usage
 * ```ts
 * import { preparePrivateDirectory, StoreDirectoryError } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = `${dir}/crash`;
 * await preparePrivateDirectory(store);
 * assert.equal((await Deno.stat(store)).mode! & 0o777, 0o700);
 * // Once there, it is used as it is.
 * await preparePrivateDirectory(store);
 * await Deno.symlink(store, `${dir}/link`);
 * await assert.rejects(preparePrivateDirectory(`${dir}/link`), StoreDirectoryError);
 * await assert.rejects(preparePrivateDirectory("crash"), StoreDirectoryError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function preparePrivateDirectory(path: string): Promise<void> {
  if (!path.startsWith("/")) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': expected an absolute path`,
      path,
    );
  }
  await checkParents(path);
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
      // Not recursive: the parents were checked, and only they.
      await Deno.mkdir(path, { mode: 0o700 });
      await Deno.chmod(path, 0o700);
    } catch (error) {
      // A capture beside this one made it first: checked below like any.
      if (!(error instanceof Deno.errors.AlreadyExists)) {
        throw new StoreDirectoryError(
          `Cannot create store directory '${path}': ${fsReason(error)}`,
          path,
          { cause: error },
        );
      }
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
  const owner = ownerProblem(info);
  if (owner !== undefined) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': ${owner}`,
      path,
    );
  }
  if (info.mode !== null && (info.mode & 0o022) !== 0) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': its mode is ${
        octal(info.mode)
      }, expected no group or world write permission (like 0700)`,
      path,
    );
  }
}

/** Why a file's owner is not trusted, or undefined when it is root or us. */
function ownerProblem(info: Deno.FileInfo): string | undefined {
  const euid = Deno.uid();
  if (info.uid === 0 || info.uid === euid) return undefined;
  return `it is owned by uid ${info.uid}, expected root${
    euid === 0 || euid === null ? "" : ` or uid ${euid}`
  }`;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * Checks every directory from `/` down to the parent of `path`, creating
 * missing ones (`0700`): each must be owned by root (or us), and be
 * writable by no one else, except a
 * sticky directory (like `/tmp`) whose next component root owns (others
 * cannot rename it there). A symlink on the way must be owned by root in a
 * checked directory; its target is checked the same way.
 */
async function checkParents(path: string): Promise<void> {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) {
    throw new StoreDirectoryError(
      `Cannot use store directory '${path}': expected a directory below /`,
      path,
    );
  }
  const fail = (message: string) =>
    new StoreDirectoryError(
      `Cannot use store directory '${path}': ${message}`,
      path,
    );
  let links = 0;
  let current = "/";
  let currentInfo = await Deno.lstat("/");
  // Components still to walk; the store's own name is last and not checked here.
  const todo = parts.slice(0, -1);
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === "..") {
      current = dirname(current);
      currentInfo = await Deno.lstat(current);
      continue;
    }
    const next = join(current, name);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(next).catch(async (error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        // Missing: made here, private, inside a directory already checked.
        await Deno.mkdir(next, { mode: 0o700 }).catch((error) => {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        });
        return await Deno.lstat(next);
      });
    } catch (error) {
      throw fail(`cannot create or inspect '${next}': ${fsReason(error)}`);
    }
    const shared = currentInfo.mode !== null &&
      (currentInfo.mode & 0o022) !== 0;
    if (shared && info.uid !== 0 && info.uid !== Deno.uid()) {
      throw fail(
        `'${next}' is owned by uid ${info.uid} inside the shared directory '${current}', expected root`,
      );
    }
    if (info.isSymlink) {
      if (info.uid !== 0 && info.uid !== Deno.uid()) {
        throw fail(
          `its parent '${next}' is a symbolic link owned by uid ${info.uid}, expected root`,
        );
      }
      if (++links > MAX_LINKS) {
        throw fail(`more than ${MAX_LINKS} symbolic links on the way`);
      }
      const target = await Deno.readLink(next);
      const targetParts = target.split("/").filter((p) => p !== "");
      todo.unshift(...targetParts);
      if (target.startsWith("/")) {
        current = "/";
        currentInfo = await Deno.lstat("/");
      }
      continue;
    }
    if (!info.isDirectory) {
      throw fail(`its parent '${next}' is not a directory`);
    }
    const owner = ownerProblem(info);
    if (owner !== undefined) {
      throw fail(`its parent '${next}': ${owner}`);
    }
    if (
      info.mode !== null && (info.mode & 0o022) !== 0 &&
      (info.mode & 0o1000) === 0
    ) {
      throw fail(
        `its parent '${next}' has mode ${
          octal(info.mode)
        }, expected it not writable by others (or sticky, like /tmp)`,
      );
    }
    current = next;
    currentInfo = info;
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
 * ```ts
 * import { checkWritable, StoreDirectoryError } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * await checkWritable(store);
 * // The probe is gone again.
 * assert.deepEqual(await Array.fromAsync(Deno.readDir(store)), []);
 * await assert.rejects(checkWritable(`${store}/missing`), StoreDirectoryError);
 * await Deno.remove(store);
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
const TEMP_FILE =
  /^\.(Core_\d{8}_\d{6}(?:_[^/]*?)?(?:-\d+)?)\.(?:gz|zz|json|txt)\.tmp-[0-9a-f]{8}$/;
/** The lock file that serialises admission, clean-up and the rate state. */
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
  /** Every file of the entry, temporary files included. */
  files: string[];
  /** The entry's temporary files (a capture under way, or one that died). */
  temporaries: string[];
  /** Bytes used by all its files. */
  bytes: number;
  /** The newest modification time of its files. */
  mtime: Date;
  /** The crash time in its name (UTC). */
  time: Date;
}

/**
 * Lists the stored cores, oldest first by the time in their names. Only
 * regular files named like the tool's own count; links, directories and
 * anything else are ignored.
 *
 * @param directory The store.
 * @returns The entries, oldest first.
 * @throws {StoreDirectoryError} When the directory cannot be read.
 *
 * @example Usage
 * ```ts
 * import { listStore } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * const files = [
 *   "Core_20260102_000000_b.out.gz",
 *   "Core_20260101_000000_a.out.gz",
 *   "Core_20260101_000000_a.out.json",
 *   "Core_20260101_000000_a.out.txt",
 *   // A capture under way.
 *   ".Core_20260103_000000.gz.tmp-0123abcd",
 *   // Not the tool's: ignored.
 *   "notes.txt",
 * ];
 * for (const name of files) {
 *   await Deno.writeFile(`${store}/${name}`, new Uint8Array(10));
 * }
 * const entries = await listStore(store);
 * assert.deepEqual(entries.map((e) => e.base), [
 *   "Core_20260101_000000_a.out",
 *   "Core_20260102_000000_b.out",
 *   "Core_20260103_000000",
 * ]);
 * const [a, , capturing] = entries;
 * assert.equal(a?.archive, "Core_20260101_000000_a.out.gz");
 * assert.equal(a?.metadata, "Core_20260101_000000_a.out.json");
 * assert.equal(a?.uuid, "Core_20260101_000000_a.out.txt");
 * assert.equal(a?.bytes, 30);
 * assert.deepEqual(a?.time, new Date(Date.UTC(2026, 0, 1)));
 * assert.equal(capturing?.archive, undefined);
 * assert.deepEqual(capturing?.temporaries, [
 *   ".Core_20260103_000000.gz.tmp-0123abcd",
 * ]);
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function listStore(directory: string): Promise<StoreEntry[]> {
  const entries = new Map<string, StoreEntry>();
  let items: Deno.DirEntry[];
  try {
    items = await Array.fromAsync(Deno.readDir(directory));
  } catch (error) {
    throw new StoreDirectoryError(
      `Cannot list the store '${directory}': ${fsReason(error)}`,
      directory,
      { cause: error },
    );
  }
  for (const item of items) {
    if (!item.isFile || item.isSymlink) continue;
    const match = ENTRY_FILE.exec(item.name);
    const temp = match === null ? TEMP_FILE.exec(item.name) : null;
    if (match === null && temp === null) continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(join(directory, item.name));
    } catch {
      continue; // Removed meanwhile.
    }
    if (!info.isFile) continue;
    const base = (match ?? temp)![1]!;
    const entry = entries.get(base) ?? {
      base,
      files: [],
      temporaries: [],
      bytes: 0,
      mtime: new Date(0),
      time: nameTime(base),
    };
    entry.files.push(item.name);
    entry.bytes += info.size;
    if (info.mtime && info.mtime > entry.mtime) entry.mtime = info.mtime;
    if (match === null) {
      entry.temporaries.push(item.name);
    } else {
      const kind = match[2];
      if (kind === "gz" || kind === "zz") entry.archive = item.name;
      else if (kind === "json") entry.metadata = item.name;
      else entry.uuid = item.name;
    }
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

/**
 * The store's file system: its size and the space still free.
 *
 * @example Usage
 * ```ts
 * import { fileSystemSpace } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const { total, free } = await fileSystemSpace(Deno.cwd());
 * assert.ok(total > 0);
 * assert.ok(free >= 0 && free <= total);
 * ```
 *
 * @param directory A directory on it.
 * @returns Bytes in all, and bytes free for unprivileged users.
 */
export async function fileSystemSpace(
  directory: string,
): Promise<{ total: number; free: number }> {
  const info = await statfs(directory);
  return { total: info.blocks * info.bsize, free: info.bavail * info.bsize };
}

/**
 * Removes an entry's files by name: a link planted since the listing is
 * removed itself, never followed (unlink does not follow links).
 *
 * @param directory The store.
 * @example Usage
 * ```ts
 * import { removeFiles } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * await Deno.writeFile(`${store}/target`, new Uint8Array(1));
 * await Deno.writeFile(`${store}/Core_20260101_000000.gz`, new Uint8Array(1));
 * // Planted since the listing: the link goes, not what it points to.
 * await Deno.symlink(`${store}/target`, `${store}/Core_20260101_000000.json`);
 * const names = [
 *   "Core_20260101_000000.gz",
 *   "Core_20260101_000000.json",
 *   "Core_20260101_000000.txt",
 * ];
 * assert.deepEqual(await removeFiles(store, names), names.slice(0, 2));
 * assert.deepEqual(
 *   await Array.fromAsync(Deno.readDir(store), (e) => e.name),
 *   ["target"],
 * );
 * await Deno.remove(store, { recursive: true });
 * ```
 *
 * @param files The names to remove; missing ones are skipped.
 * @returns The names that were removed.
 */
export async function removeFiles(
  directory: string,
  files: readonly string[],
): Promise<string[]> {
  const removed: string[] = [];
  for (const name of files) {
    try {
      await Deno.remove(join(directory, name));
      removed.push(name);
    } catch {
      // Gone already.
    }
  }
  return removed;
}

/** Options for {@linkcode withStoreLock}. */
export interface StoreLockOptions {
  /**
   * How long to wait for the lock before going on without it (a capture
   * must not wait forever for a stuck one).
   *
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * Where to say that the lock could not be had; without it, that is an
   * error.
   *
   * @default {undefined}
   */
  warnings?: string[];
}

/**
 * Runs `work` holding the store's lock (an exclusive `flock` on a hidden
 * file), so that parallel captures decide, clean up and count one at a
 * time. A lock that cannot be opened (a directory in its place, an
 * immutable file) or had in time is a warning when `warnings` is given:
 * the work then runs unlocked, since no bookkeeping trouble may cost a core.
 *
 * @param directory The store.
 * @param work What to do under the lock.
 * @param options How long to wait, and where to warn.
 * @returns What `work` returned.
 * @throws {FileAccessError} When the lock cannot be had and `warnings` is
 * not given.
 *
 * @example Usage
 * ```ts
 * import { withStoreLock } from "./store.ts";
 * import { FileAccessError } from "../fs/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const store = await Deno.makeTempDir();
 * const names = await withStoreLock(
 *   store,
 *   async () => await Array.fromAsync(Deno.readDir(store), (e) => e.name),
 * );
 * assert.deepEqual(names, [".gzcoredump.lock"]);
 *
 * // A directory in the lock's place: the work goes on without it, with a
 * // warning, or fails when there is nowhere to warn.
 * await Deno.remove(`${store}/.gzcoredump.lock`);
 * await Deno.mkdir(`${store}/.gzcoredump.lock`);
 * const warnings: string[] = [];
 * const done = await withStoreLock(store, () => Promise.resolve("done"), {
 *   warnings,
 * });
 * assert.equal(done, "done");
 * assert.match(warnings[0] ?? "", /it is a directory.*went on without it/);
 * await assert.rejects(
 *   withStoreLock(store, () => Promise.resolve("done")),
 *   FileAccessError,
 * );
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function withStoreLock<T>(
  directory: string,
  work: () => Promise<T>,
  options: StoreLockOptions = {},
): Promise<T> {
  const { timeoutMs = 30_000, warnings } = options;
  const path = join(directory, LOCK_FILE);
  let lock: Deno.FsFile | undefined;
  try {
    const info = await Deno.lstat(path).catch(() => undefined);
    if (info !== undefined && !info.isFile) {
      throw new Error(
        `it is ${
          info.isDirectory ? "a directory" : "not a regular file"
        }, expected a regular file`,
      );
    }
    try {
      lock = await Deno.open(path, {
        read: true,
        write: true,
        create: true,
        mode: 0o600,
      });
    } catch (error) {
      // An immutable or read-only lock file still takes a lock read-only.
      if (info === undefined) throw error;
      lock = await Deno.open(path, { read: true });
    }
  } catch (error) {
    if (warnings === undefined) {
      throw new FileAccessError(
        `Cannot open the store lock '${path}': ${fsReason(error)}`,
        path,
        { cause: error },
      );
    }
    warnings.push(
      `Cannot open the store lock '${path}': ${
        fsReason(error)
      }; went on without it`,
    );
    return await work();
  }
  const file = lock;
  const pending = file.lock(true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let locked: boolean;
  try {
    locked = await Promise.race([
      pending.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch (error) {
    file.close();
    if (warnings === undefined) throw error;
    warnings.push(
      `Cannot lock the store '${path}': ${
        errorText(error)
      }; went on without it`,
    );
    return await work();
  } finally {
    clearTimeout(timer);
  }
  if (!locked) {
    // The pending lock may still be granted later: release it then.
    pending.then(() => file.close(), () => file.close());
    const message = `Cannot lock the store '${path}' within ${
      timeoutMs / 1000
    } s (another capture holds it)`;
    if (warnings === undefined) throw new FileAccessError(message, path);
    warnings.push(`${message}; went on without it`);
    return await work();
  }
  try {
    return await work();
  } finally {
    try {
      await file.unlock();
    } finally {
      file.close();
    }
  }
}
