/**
 * The store directory on a temporary directory: listing, removal, the
 * directory checks that need no other user, and the lock.
 */
import assert from "node:assert/strict";
import { FileAccessError } from "../../../lib/fs/mod.ts";
import {
  checkWritable,
  coreBaseName,
  fileSystemSpace,
  listStore,
  preparePrivateDirectory,
  removeFiles,
  StoreDirectoryError,
  withStoreLock,
} from "../../../lib/store/mod.ts";
import { tempDir } from "../_temp.ts";

async function names(directory: string): Promise<string[]> {
  const all = await Array.fromAsync(Deno.readDir(directory));
  return all.map((e) => e.name).sort();
}

async function touch(path: string, bytes = 0, mtime?: Date): Promise<void> {
  await Deno.writeFile(path, new Uint8Array(bytes));
  if (mtime !== undefined) await Deno.utime(path, mtime, mtime);
}

function rejectsWith(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof StoreDirectoryError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"));
    return true;
  };
}

Deno.test("listStore() groups an entry's files, counts its bytes and reads its time from the name", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  const base = "Core_20261126_090000_app";
  const early = new Date(Date.UTC(2026, 10, 26, 9, 1));
  const late = new Date(Date.UTC(2026, 10, 26, 9, 2));
  await touch(`${d}/${base}.gz`, 1000, early);
  await touch(`${d}/${base}.json`, 200, late);
  await touch(`${d}/${base}.txt`, 16, early);
  await touch(`${d}/Core_20261125_235959.zz`, 50);
  const entries = await listStore(d);
  assert.deepEqual(entries.map((e) => e.base), [
    "Core_20261125_235959",
    base,
  ]);
  const [older, entry] = entries;
  assert.equal(older!.archive, "Core_20261125_235959.zz");
  assert.equal(older!.metadata, undefined);
  assert.deepEqual(older!.time, new Date(Date.UTC(2026, 10, 25, 23, 59, 59)));
  assert.equal(entry!.archive, `${base}.gz`);
  assert.equal(entry!.metadata, `${base}.json`);
  assert.equal(entry!.uuid, `${base}.txt`);
  assert.deepEqual([...entry!.files].sort(), [
    `${base}.gz`,
    `${base}.json`,
    `${base}.txt`,
  ]);
  assert.deepEqual(entry!.temporaries, []);
  assert.equal(entry!.bytes, 1216);
  assert.deepEqual(entry!.mtime, late, "the newest of its files");
  assert.deepEqual(entry!.time, new Date(Date.UTC(2026, 10, 26, 9, 0, 0)));
});

Deno.test("listStore() counts the tool's temporary files and ignores everything not its own", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  const live = "Core_20261127_000000_x";
  await touch(`${d}/.${live}.gz.tmp-0123abcd`, 10);
  await touch(`${d}/${live}.json`, 5);
  const ignored = [
    `.${live}.json.tmp-0123abcZ`, // not hex
    `.${live}.json.tmp-0123abc`, // 7 digits
    `${live}.gz.tmp-0123abcd`, // not hidden
    "core.1234",
    "Core_2026_01.gz",
    "Core_20261126_0900.gz",
    "Core_20261126_090000.gz.bak",
    "Core_20261126_090000.xz",
    "core_20261126_090000.gz",
    "xCore_20261126_090000.gz",
    ".gzcoredump.lock",
    ".gzcoredump-rate.json",
    "README",
  ];
  for (const name of ignored) await touch(`${d}/${name}`, 7);
  // A directory and a symlink with the tool's names are not its files.
  await Deno.mkdir(`${d}/Core_20261128_000000.gz`);
  await touch(`${d}/outside`, 3);
  await Deno.symlink(`${d}/outside`, `${d}/Core_20261129_000000.gz`);
  await Deno.symlink(`${d}/outside`, `${d}/.${live}.txt.tmp-00000000`);
  const entries = await listStore(d);
  assert.equal(entries.length, 1);
  const [entry] = entries;
  assert.equal(entry!.base, live);
  assert.deepEqual(entry!.temporaries, [`.${live}.gz.tmp-0123abcd`]);
  assert.equal(entry!.archive, undefined, "a temporary is no archive yet");
  assert.equal(entry!.metadata, `${live}.json`);
  assert.equal(entry!.bytes, 15);
});

Deno.test("listStore() sorts by the time in the name, then the files' time, then numbered names", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  const same = new Date(Date.UTC(2026, 0, 1));
  const t = "Core_20260101_120000";
  for (const base of [`${t}_a-10`, `${t}_a-2`, `${t}_a`]) {
    await touch(`${d}/${base}.gz`, 1, same);
  }
  await touch(`${d}/${t}_b.gz`, 1, new Date(same.getTime() - 1000));
  await touch(`${d}/Core_20260101_115959_z.gz`, 1, new Date(2030, 0));
  assert.deepEqual((await listStore(d)).map((e) => e.base), [
    "Core_20260101_115959_z",
    `${t}_b`,
    `${t}_a`,
    `${t}_a-2`,
    `${t}_a-10`,
  ]);
});

Deno.test("listStore() finds the names coreBaseName() makes, even of hostile arguments", async () => {
  await using dir = await tempDir();
  const time = new Date(Date.UTC(2026, 10, 26, 9, 5, 7));
  const hostile = [
    "../../etc/passwd",
    "a.gz",
    "x.json.tmp-01234567",
    "-2",
    "name with spaces\nand newline",
    "日本語のプログラム",
    "\u202egnp.exe",
    "",
  ];
  const bases = new Set<string>();
  for (const [i, argument] of hostile.entries()) {
    const base = coreBaseName(new Date(time.getTime() + i * 1000), argument);
    bases.add(base);
    await touch(`${dir.path}/${base}.gz`, 1);
  }
  assert.deepEqual(
    await names(dir.path),
    [...bases].map((b) => `${b}.gz`).sort(),
  );
  const entries = await listStore(dir.path);
  assert.deepEqual(entries.map((e) => e.base), [...bases]);
  for (const entry of entries) assert.equal(entry.archive, `${entry.base}.gz`);
});

Deno.test("listStore() of a missing directory is a StoreDirectoryError naming it", async () => {
  await using dir = await tempDir();
  await assert.rejects(
    () => listStore(`${dir.path}/missing`),
    rejectsWith(
      /^Cannot list the store '.*missing': no such file or directory/,
    ),
  );
});

Deno.test("removeFiles() removes the names given, skips missing ones, and never follows a link", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await Deno.mkdir(`${d}/store`);
  await touch(`${d}/victim`, 10);
  await touch(`${d}/store/Core_20260101_000000.gz`, 10);
  await Deno.symlink(`${d}/victim`, `${d}/store/Core_20260101_000000.json`);
  const removed = await removeFiles(`${d}/store`, [
    "Core_20260101_000000.gz",
    "Core_20260101_000000.json",
    "Core_20260101_000000.txt",
  ]);
  assert.deepEqual(removed, [
    "Core_20260101_000000.gz",
    "Core_20260101_000000.json",
  ]);
  assert.deepEqual(await names(`${d}/store`), []);
  assert.equal((await Deno.stat(`${d}/victim`)).size, 10, "the target stays");
});

Deno.test("preparePrivateDirectory() creates the store and missing parents with mode 0700", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/a/b/store`;
  await preparePrivateDirectory(store);
  for (const path of [`${dir.path}/a`, `${dir.path}/a/b`, store]) {
    const info = await Deno.lstat(path);
    assert.ok(info.isDirectory, path);
    assert.equal(info.mode! & 0o7777, 0o700, path);
  }
  // Again: nothing to do, and an existing 0755 store keeps its mode.
  await preparePrivateDirectory(store);
  await Deno.chmod(store, 0o755);
  await preparePrivateDirectory(store);
  assert.equal((await Deno.stat(store)).mode! & 0o7777, 0o755);
  await checkWritable(store);
  assert.deepEqual(await names(store), [], "the probe is gone");
});

Deno.test("preparePrivateDirectory() refuses a store that is a link, a file, or writable by others", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await assert.rejects(
    () => preparePrivateDirectory("relative/store"),
    rejectsWith(/expected an absolute path$/),
  );
  await assert.rejects(
    () => preparePrivateDirectory("/"),
    rejectsWith(/expected a directory below \/$/),
  );
  await Deno.mkdir(`${d}/real`);
  await Deno.symlink(`${d}/real`, `${d}/link`);
  await assert.rejects(
    () => preparePrivateDirectory(`${d}/link`),
    rejectsWith(/it is a symbolic link, expected a real directory$/),
  );
  await touch(`${d}/file`);
  await assert.rejects(
    () => preparePrivateDirectory(`${d}/file`),
    rejectsWith(/it is not a directory$/),
  );
  for (const mode of [0o770, 0o702, 0o777]) {
    await Deno.chmod(`${d}/real`, mode);
    const octal = mode.toString(8).padStart(4, "0");
    await assert.rejects(
      () => preparePrivateDirectory(`${d}/real`),
      rejectsWith(
        new RegExp(
          `its mode is ${octal}, expected no group or world write permission`,
        ),
      ),
    );
  }
});

Deno.test("preparePrivateDirectory() refuses a parent others can write to, unless it is sticky", async () => {
  await using dir = await tempDir();
  const parent = `${dir.path}/shared`;
  await Deno.mkdir(parent);
  await Deno.chmod(parent, 0o777);
  await assert.rejects(
    () => preparePrivateDirectory(`${parent}/store`),
    rejectsWith(
      /its parent '.*shared' has mode 0777, expected it not writable by others \(or sticky, like \/tmp\)/,
    ),
  );
  // Nothing was created under the refused parent.
  assert.deepEqual(await names(parent), []);
  // Sticky, like /tmp: our own store inside it is fine.
  await Deno.chmod(parent, 0o1777);
  await preparePrivateDirectory(`${parent}/store`);
  assert.ok((await Deno.lstat(`${parent}/store`)).isDirectory);
});

Deno.test("preparePrivateDirectory() follows a link on the way that its owner may trust", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/target`, { mode: 0o700 });
  await Deno.symlink(`${dir.path}/target`, `${dir.path}/via`);
  await preparePrivateDirectory(`${dir.path}/via/store`);
  assert.ok((await Deno.lstat(`${dir.path}/target/store`)).isDirectory);
  // The checks apply to the link's target too.
  await Deno.mkdir(`${dir.path}/open`);
  await Deno.chmod(`${dir.path}/open`, 0o777);
  await Deno.symlink(`${dir.path}/open`, `${dir.path}/via-open`);
  await assert.rejects(
    () => preparePrivateDirectory(`${dir.path}/via-open/store`),
    rejectsWith(/has mode 0777/),
  );
});

Deno.test("checkWritable() of a missing directory is a StoreDirectoryError", async () => {
  await using dir = await tempDir();
  await assert.rejects(
    () => checkWritable(`${dir.path}/missing`),
    rejectsWith(/^Cannot create files in store directory '.*missing': /),
  );
});

Deno.test("fileSystemSpace() gives a total and the free bytes within it", async () => {
  await using dir = await tempDir();
  const { total, free } = await fileSystemSpace(dir.path);
  assert.ok(Number.isSafeInteger(total) && total > 0, String(total));
  assert.ok(Number.isSafeInteger(free) && free >= 0 && free <= total);
});

Deno.test("withStoreLock() runs one holder at a time and returns what the work returns", async () => {
  await using dir = await tempDir();
  const events: string[] = [];
  const hold = (name: string, ms: number) =>
    withStoreLock(dir.path, async () => {
      events.push(`${name} in`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      events.push(`${name} out`);
      return name;
    });
  const first = hold("first", 80);
  await new Promise((resolve) => setTimeout(resolve, 10));
  const second = hold("second", 1);
  assert.deepEqual(await Promise.all([first, second]), ["first", "second"]);
  assert.deepEqual(events, [
    "first in",
    "first out",
    "second in",
    "second out",
  ]);
  const lock = await Deno.lstat(`${dir.path}/.gzcoredump.lock`);
  assert.ok(lock.isFile);
  assert.equal(lock.mode! & 0o777, 0o600);
});

Deno.test("withStoreLock() that waits too long goes on without the lock, with a warning", async () => {
  await using dir = await tempDir();
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => entered = resolve);
  const first = withStoreLock(dir.path, async () => {
    entered();
    await held;
  });
  await inside;
  const warnings: string[] = [];
  const value = await withStoreLock(dir.path, () => Promise.resolve(7), {
    timeoutMs: 30,
    warnings,
  });
  assert.equal(value, 7, "the work ran anyway");
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /^Cannot lock the store '.*\.gzcoredump\.lock' within 0\.03 s \(another capture holds it\); went on without it$/,
  );
  // Without a place for warnings, waiting too long is an error.
  await assert.rejects(
    () => withStoreLock(dir.path, () => Promise.resolve(), { timeoutMs: 30 }),
    (error: unknown) => error instanceof FileAccessError,
  );
  release();
  await first;
  // The late lock requests are granted now, and let go at once.
  await withStoreLock(dir.path, () => Promise.resolve(), { timeoutMs: 2000 });
});

Deno.test("withStoreLock() with a directory in the lock's place warns, or throws without warnings", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/.gzcoredump.lock`);
  const warnings: string[] = [];
  assert.equal(
    await withStoreLock(dir.path, () => Promise.resolve("ran"), { warnings }),
    "ran",
  );
  assert.match(
    warnings[0]!,
    /it is a directory, expected a regular file; went on without it$/,
  );
  await assert.rejects(
    () => withStoreLock(dir.path, () => Promise.resolve()),
    (error: unknown) =>
      error instanceof FileAccessError &&
      /^Cannot open the store lock '.*': it is a directory/.test(error.message),
  );
});
