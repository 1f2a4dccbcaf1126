/**
 * The crash store's limits, policies and refusals, exercised through real
 * captures on real file systems (tmpfs mounts where space matters).
 */
import assert from "node:assert/strict";
import {
  crashCore,
  defaultStore,
  fileDigest,
  listAll,
  listDir,
  mainCommand,
  runMain,
  runTool,
  tempDir,
} from "../_helpers.ts";
import { archives, capture, NOW, random, sidecars, tmpfs } from "../_store.ts";

Deno.test("store: --max-count keeps the newest cores and touches nothing but its own files", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  for (let i = 0; i < 4; i++) {
    assert.equal(
      (await capture(store, data, ["-a", `p${i}`], NOW - 100 + i)).code,
      0,
    );
  }
  // Things that look like cores but are not the tool's to delete.
  await Deno.mkdir(`${store}/Core_20200101_000000_dir.gz`);
  await Deno.writeTextFile(`${dir.path}/outside`, "precious");
  await Deno.symlink(
    `${dir.path}/outside`,
    `${store}/Core_20200101_000000_link.gz`,
  );
  await Deno.writeTextFile(`${store}/notes.txt`, "mine");
  await Deno.writeTextFile(`${store}/Core_bogus.gz`, "not named like ours");
  const result = await capture(store, data, ["--max-count", "3", "-a", "p4"]);
  assert.equal(result.code, 0, result.stderr);
  const cores = (await listDir(store)).filter((n) =>
    /^Core_\d{8}_\d{6}_p\d\.gz$/.test(n)
  );
  assert.deepEqual(cores.map((n) => n.slice(-5, -3)), ["p2", "p3", "p4"]);
  assert.match(
    result.stderr,
    /removed Core_\d{8}_\d{6}_p0: more than --max-count 3 cores/,
  );
  assert.ok(
    (await Deno.stat(`${store}/Core_20200101_000000_dir.gz`)).isDirectory,
  );
  assert.ok(
    (await Deno.lstat(`${store}/Core_20200101_000000_link.gz`)).isSymlink,
  );
  assert.equal(await Deno.readTextFile(`${dir.path}/outside`), "precious");
  assert.equal(await Deno.readTextFile(`${store}/notes.txt`), "mine");
  assert.equal(
    await Deno.readTextFile(`${store}/Core_bogus.gz`),
    "not named like ours",
  );
});

Deno.test("store: --max-use removes the oldest until the new core fits, never the new one", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = random(100_000); // Does not compress: ~100 KB per core.
  for (let i = 0; i < 3; i++) {
    await capture(store, data, ["-a", `u${i}`], NOW - 10 + i);
  }
  const result = await capture(store, data, ["--max-use", "250K", "-a", "u3"]);
  assert.equal(result.code, 0, result.stderr);
  const cores = await archives(store);
  assert.deepEqual(cores.map((n) => n.slice(-5, -3)), ["u2", "u3"]);
  assert.match(
    result.stderr,
    /removed .*_u0: the store uses more than --max-use/,
  );
  // A core larger than --max-use on its own goes in alone, cut at the limit.
  const big = await capture(store, random(400_000), [
    "--max-use",
    "250K",
    "-a",
    "big",
  ]);
  assert.equal(big.code, 0);
  assert.deepEqual(
    (await archives(store)).map((n) => n.slice(-6, -3)),
    ["big"],
  );
  let used = 0;
  for (const name of await listDir(store)) {
    used += (await Deno.stat(`${store}/${name}`)).size;
  }
  assert.ok(used <= 250 * 1024, `the store uses ${used} bytes`);
  const meta = (await sidecars(store)).find((m) => m.argument === "big")!;
  assert.equal(meta.truncated, true);
});

Deno.test("store: --max-age removes cores stored longer ago at the next capture", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  await capture(store, data, ["-a", "old"]);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await capture(store, data, ["-a", "recent"]);
  const result = await capture(store, data, ["--max-age", "2s", "-a", "now"]);
  assert.equal(result.code, 0);
  assert.match(
    result.stderr,
    /removed .*_old: older than --max-age \(2 seconds\)/,
  );
  const names = await archives(store);
  assert.equal(names.length, 2);
  assert.ok(names.every((n) => !n.includes("_old")));
});

Deno.test("store: less free space than --keep-free keeps metadata only and says why", async () => {
  await using fs = await tmpfs("1m");
  await Deno.writeFile(`${fs.path}/filler`, random(900_000));
  const result = await capture(fs.path, random(50_000), [
    "--keep-free",
    "300K",
    "-P",
    "4321",
    "-a",
    "keep",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    /dropped core of pid 4321: only \d+ bytes free, --keep-free is 307200: metadata only; metadata in .*Core_\d+_\d+_keep\.json/,
  );
  const names = await listDir(fs.path);
  assert.deepEqual(
    names.filter((n) => n.startsWith("Core_")).map((n) =>
      n.replace(/^Core_\d+_\d+_/, "")
    ),
    ["keep.json"],
  );
  const [meta] = await sidecars(fs.path);
  assert.equal(meta!.archive, null);
  assert.match(String(meta!.reason), /--keep-free/);
  assert.equal(meta!.core_size, 50_000, "the core was read for its metadata");
  const dmesg = new TextDecoder().decode((await runTool("dmesg", [])).stdout);
  assert.ok(
    dmesg.includes("dropped core of pid 4321: only"),
    "the kernel log says why",
  );
});

Deno.test("store: free space falling under --keep-free while streaming removes the partial core", async () => {
  await using fs = await tmpfs("8m");
  const result = await capture(fs.path, random(12 << 20), [
    "--keep-free",
    "5M",
    "--max-use",
    "100%",
    "-a",
    "stream",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    /dropped core: free space fell to \d+ bytes, under --keep-free 5242880, while storing: the partial core was removed/,
  );
  const names = await listAll(fs.path);
  assert.ok(
    !names.some((n) => n.endsWith(".gz") || n.includes(".tmp-")),
    names.join(" "),
  );
  const [meta] = await sidecars(fs.path);
  assert.match(String(meta!.reason), /under --keep-free/);
});

Deno.test("store: --max-size and RLIMIT_CORE cut the core, stop reading, and say so", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const bytes = await Deno.readFile(core);
  const store = `${dir.path}/store`;
  const cut = await runMain([
    "-c",
    "-p",
    store,
    "--max-size",
    "64K",
    "-a",
    "maxsize",
  ], { stdin: { path: core } });
  assert.equal(cut.code, 0, cut.stderr);
  const gz = (await listDir(store)).find((n) => n.endsWith("_maxsize.gz"))!;
  const restored = await runMain(["-d", "-f", `${store}/${gz}`, "-o", "-"]);
  assert.deepEqual(restored.stdout, bytes.subarray(0, 65536));
  const meta = JSON.parse(
    await Deno.readTextFile(`${store}/${gz.replace(".gz", ".json")}`),
  );
  assert.equal(meta.truncated, true);
  assert.equal(meta.core_size, 65536);
  assert.equal(meta.expected_size, bytes.length);
  assert.match(
    meta.reason,
    /cut at 65536 bytes \(--max-size\); reading stopped there/,
  );
  assert.notEqual(meta.comm, null, "the notes, at the start, were still read");

  const limited = await runMain([
    "-c",
    "-p",
    store,
    "-r",
    "100000",
    "-a",
    "rlimit",
  ], { stdin: { path: core } });
  assert.equal(limited.code, 0);
  const rmeta = (await sidecars(store)).find((m) => m.argument === "rlimit")!;
  assert.equal(rmeta.core_size, 100000);
  assert.match(String(rmeta.reason), /RLIMIT_CORE of the crashed process/);

  const zero = await runMain(["-c", "-p", store, "-r", "0", "-a", "rlimit0"], {
    stdin: { path: core },
  });
  assert.equal(zero.code, 0);
  const zmeta = (await sidecars(store)).find((m) => m.argument === "rlimit0")!;
  assert.equal(zmeta.archive, null);
  assert.match(
    String(zmeta.reason),
    /RLIMIT_CORE of the crashed process is 0 bytes, below one page: metadata only/,
  );
  assert.equal(zmeta.comm, "crasher");

  const ignored = await runMain([
    "-c",
    "-p",
    store,
    "-r",
    "0",
    "--ignore-rlimit",
    "-a",
    "ignored",
  ], { stdin: { path: core } });
  assert.equal(ignored.code, 0);
  const imeta = (await sidecars(store)).find((m) => m.argument === "ignored")!;
  assert.equal(imeta.core_size, bytes.length);
  assert.equal(imeta.reason, null);
});

Deno.test("store: --rate keeps metadata only beyond N cores of a program per period, across runs", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  const args = ["--rate", "2/5s", "-E", "!usr!bin!looper", "-a", "looper"];
  for (let i = 0; i < 4; i++) {
    const result = await capture(store, data, args, NOW + i);
    assert.equal(result.code, 0, result.stderr);
    if (i >= 2) {
      assert.match(
        result.stderr,
        /dropped core: more than 2 cores of '\/usr\/bin\/looper' within 5 seconds \(--rate\): metadata only/,
      );
    }
  }
  // Another program is not limited by the first one's loop.
  assert.equal(
    (await capture(store, data, [
      "--rate",
      "2/1h",
      "-E",
      "!usr!bin!other",
      "-a",
      "other",
    ], NOW + 5)).stderr.includes("dropped"),
    false,
  );
  const metas = await sidecars(store);
  assert.equal(
    metas.filter((m) => m.argument === "looper" && m.archive !== null).length,
    2,
  );
  assert.equal(
    metas.filter((m) => m.argument === "looper" && m.archive === null).length,
    2,
  );
  // Once the period has passed, by this tool's clock, it may store again.
  await new Promise((resolve) => setTimeout(resolve, 5200));
  const later = await capture(store, data, args);
  assert.doesNotMatch(later.stderr, /dropped/);
});

Deno.test("store: --mode opens cores to a group, but never for a set-id process", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  await capture(store, data, ["--mode", "0640", "-a", "shared"]);
  await capture(store, data, ["--mode", "0640", "-D", "2", "-a", "setid"]);
  for (const name of await listDir(store)) {
    const mode = (await Deno.stat(`${store}/${name}`)).mode! & 0o777;
    assert.equal(mode, name.includes("_setid") ? 0o600 : 0o640, name);
  }
});

Deno.test("store: eight parallel captures of real cores all land intact under distinct names", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const digest = await fileDigest(core);
  const store = `${dir.path}/store`;
  const results = await Promise.all(
    Array.from(
      { length: 8 },
      () =>
        runMain([
          "-c",
          "-p",
          store,
          "-t",
          String(NOW),
          "--rate",
          "100/1h",
          "-a",
          "parallel",
        ], { stdin: { path: core } }),
    ),
  );
  for (const result of results) assert.equal(result.code, 0, result.stderr);
  const stored = await archives(store);
  assert.equal(stored.length, 8, stored.join(" "));
  for (const archive of stored) {
    const out = `${dir.path}/${archive}.core`;
    assert.equal(
      (await runMain(["-d", "-f", `${store}/${archive}`, "-o", out])).code,
      0,
    );
    assert.equal(await fileDigest(out), digest, archive);
  }
  assert.equal((await sidecars(store)).length, 8);
});

Deno.test("store: stale temporary files of a dead run are removed, fresh ones are not", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  await capture(store, new TextEncoder().encode("first"));
  const stale = `${store}/.Core_20260101_000000_x.gz.tmp-0badc0de`;
  const fresh = `${store}/.Core_20260101_000000_y.gz.tmp-00c0ffee`;
  await Deno.writeTextFile(stale, "half a core");
  await Deno.writeTextFile(fresh, "being written");
  await Deno.utime(
    stale,
    new Date(Date.now() - 3_600_000),
    new Date(Date.now() - 3_600_000),
  );
  const result = await capture(store, new TextEncoder().encode("second"));
  assert.equal(result.code, 0);
  const names = await listAll(store);
  assert.ok(!names.includes(".Core_20260101_000000_x.gz.tmp-0badc0de"));
  assert.ok(names.includes(".Core_20260101_000000_y.gz.tmp-00c0ffee"));
});

Deno.test("store: a directory owned by another user or writable by others is refused", async () => {
  await using dir = await tempDir();
  await using fallback = await defaultStore();
  const data = new TextEncoder().encode("core");
  const foreign = `${dir.path}/foreign`;
  await Deno.mkdir(foreign, { mode: 0o700 });
  await Deno.chown(foreign, 1000, 1000);
  const open = `${dir.path}/open`;
  await Deno.mkdir(open);
  await Deno.chmod(open, 0o770);
  for (
    const [path, message] of [
      [foreign, /it is owned by uid 1000, expected root/],
      [open, /its mode is 0770, expected no group or world write permission/],
    ] as const
  ) {
    const result = await fallback.runMain([
      "-c",
      "-p",
      path,
      "-a",
      fallback.marker,
    ], {
      stdin: data,
    });
    assert.equal(result.code, 0);
    assert.match(result.stderr, message);
    assert.match(result.stderr, /storing in '\/var\/crash' instead/);
    assert.deepEqual(await listAll(path), []);
  }
  assert.equal(
    (await fallback.files()).filter((n) => n.endsWith(".gz")).length,
    2,
  );
});

Deno.test("store: hostile %e values name files inside the store only", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const [deno, ...rest] = (await import("../_helpers.ts")).mainCommand();
  // Raw bytes, as the kernel passes a comm of 15 bytes of invalid UTF-8.
  const junk =
    "$(printf '\\377\\376\\375\\374\\373\\372\\371\\370\\367\\366\\365\\364\\363\\362\\361')";
  for (
    const value of [
      "' a b c '",
      "'..'",
      "'/'",
      "'../../etc'",
      "\"$(printf 'a\\nb')\"",
      junk,
    ]
  ) {
    const command = [deno!, ...rest].map((a) => `'${a}'`).join(" ");
    const result = await runTool("sh", [
      "-c",
      `printf core | ${command} -c -p '${store}' -a ${value}`,
    ]);
    assert.equal(result.code, 0, `${value}: ${result.stderr}`);
  }
  assert.deepEqual(await listDir(dir.path), ["store"]);
  const names = await listDir(store);
  assert.equal(names.length, 12, names.join(" "));
  for (const name of names) {
    assert.match(
      name,
      /^Core_\d{8}_\d{6}(_[\p{L}\p{N}._+-]+)?(-\d+)?\.(gz|json)$/u,
      name,
    );
  }
});

Deno.test("store: a core claiming absurd sizes is stored whole, its metadata says what was wrong", async () => {
  await using dir = await tempDir();
  const bytes = await Deno.readFile(await crashCore(dir.path));
  const view = new DataView(bytes.buffer);
  const phoff = Number(view.getBigUint64(32, true));
  // The second program header (the first PT_LOAD) claims 2^62 bytes.
  view.setBigUint64(phoff + 56 + 32, 1n << 62n, true);
  const store = `${dir.path}/store`;
  const result = await runMain(["-c", "-p", store, "-a", "absurd"], {
    stdin: bytes,
  });
  assert.equal(result.code, 0, result.stderr);
  const [meta] = await sidecars(store);
  assert.match(
    String(meta!.elf_error),
    /Cannot use program header 1 p_filesz 0x4000000000000000 .* exceeds 2\^53/,
  );
  assert.equal(meta!.core_size, bytes.length);
  const gz = (await listDir(store)).find((n) => n.endsWith(".gz"))!;
  assert.deepEqual(
    (await runMain(["-d", "-f", `${store}/${gz}`, "-o", "-"])).stdout,
    bytes,
  );
});

Deno.test("store: hooks run before and after, as argv without a shell", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  await Deno.mkdir(`${dir.path}/copies`);
  const result = await capture(store, new TextEncoder().encode("hooked"), [
    "--before",
    `/usr/bin/touch ${dir.path}/before;ran`,
    "--after",
    `/usr/bin/cp -t ${dir.path}/copies`,
    "-a",
    "hooked",
  ]);
  assert.equal(result.code, 0, result.stderr);
  // The argument is one word, ';' and all: no shell saw it.
  assert.ok((await Deno.stat(`${dir.path}/before;ran`)).isFile);
  const copies = await listDir(`${dir.path}/copies`);
  assert.equal(copies.length, 1);
  assert.match(copies[0]!, /_hooked\.gz$/);
});

Deno.test("store: options come from the config file too, and the command line wins", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const config = `${dir.path}/gzcoredump.conf`;
  await Deno.writeTextFile(
    config,
    "# store policy\nmax-count = 2\nrate = 50/1h\nmode = 0640\nbogus line\n",
  );
  const data = new TextEncoder().encode("core");
  for (let i = 0; i < 3; i++) {
    const result = await capture(store, data, [
      "--config",
      config,
      "-a",
      `c${i}`,
    ], NOW + i);
    assert.equal(result.code, 0);
    assert.match(
      result.stderr,
      /ignored line 5 of '.*gzcoredump\.conf': 'bogus line', expected name = value/,
    );
  }
  const stored = await archives(store);
  assert.equal(stored.length, 2);
  assert.equal(
    (await Deno.stat(`${store}/${stored[0]}`)).mode! & 0o777,
    0o640,
  );
  await capture(store, data, [
    "--config",
    config,
    "--max-count",
    "1",
    "-a",
    "c3",
  ], NOW + 3);
  assert.equal(
    (await archives(store)).length,
    1,
  );
  const missing = await capture(store, data, [
    "--config",
    `${dir.path}/none.conf`,
    "-a",
    "c4",
  ], NOW + 4);
  assert.equal(missing.code, 0);
  assert.match(missing.stderr, /ignored config '.*none\.conf': cannot read it/);
});

Deno.test("store: a store swapped for a symlink, or under a parent others can write, is refused", async () => {
  await using dir = await tempDir();
  await using fallback = await defaultStore();
  const data = new TextEncoder().encode("core");
  const store = `${dir.path}/store`;
  assert.equal(
    (await fallback.runMain(["-c", "-p", store, "-a", fallback.marker], {
      stdin: data,
    }))
      .code,
    0,
  );
  // Between two crashes, the store is swapped for a link to a victim directory.
  const victim = `${dir.path}/victim`;
  await Deno.mkdir(victim, { mode: 0o700 });
  await Deno.rename(store, `${dir.path}/old-store`);
  await Deno.symlink(victim, store);
  const swapped = await fallback.runMain([
    "-c",
    "-p",
    store,
    "-a",
    fallback.marker,
  ], {
    stdin: data,
  });
  assert.equal(swapped.code, 0);
  assert.match(
    swapped.stderr,
    /it is a symbolic link, expected a real directory; storing in '\/var\/crash' instead/,
  );
  assert.deepEqual(await listAll(victim), []);
  // A parent that others may write to (and so rename the store in) is no safe place.
  const shared = `${dir.path}/shared`;
  await Deno.mkdir(`${shared}/store`, { recursive: true, mode: 0o700 });
  await Deno.chmod(shared, 0o777);
  const open = await fallback.runMain([
    "-c",
    "-p",
    `${shared}/store`,
    "-a",
    fallback.marker,
  ], { stdin: data });
  assert.match(
    open.stderr,
    /its parent '.*shared' has mode 0777, expected it not writable by others \(or sticky, like \/tmp\)/,
  );
  assert.deepEqual(await listAll(`${shared}/store`), []);
  assert.equal(
    (await fallback.files()).filter((n) => n.endsWith(".gz")).length,
    2,
  );
});

Deno.test("store: a --max-size cut at the edge of a read stores the prefix and ends", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  // A pipe read takes up to 1 MiB: a cut at 1 or 2 MiB falls where one
  // read ends and the next begins (it hung there: the core was lost).
  const input = `${dir.path}/input`;
  const data = random(5_000_000);
  await Deno.writeFile(input, data);
  for (const size of [1 << 20, 2 << 20]) {
    const result = await runTool("timeout", [
      "60",
      ...mainCommand(),
      "-c",
      "-p",
      store,
      "--max-size",
      String(size),
      "-a",
      `cut${size}`,
    ], { stdin: { path: input } });
    assert.equal(result.code, 0, `--max-size ${size}: ${result.stderr}`);
    const gz = (await listDir(store)).find((n) => n.endsWith(`_cut${size}.gz`));
    assert.ok(gz !== undefined, `--max-size ${size}: an archive`);
    const restored = await runMain(["-d", "-f", `${store}/${gz}`, "-o", "-"]);
    assert.deepEqual(restored.stdout, data.subarray(0, size));
  }
});
