/**
 * The store's promise, tested on real processes, real signals and real
 * file systems: every capture leaves exactly one record of its own crash,
 * whatever happens, and a core the policy keeps is never removed by a
 * capture running beside it.
 */
import assert from "node:assert/strict";
import {
  fileDigest,
  listAll,
  listDir,
  pythonInflate,
  runMain,
  runTool,
  tempDir,
} from "../_helpers.ts";
import {
  archives,
  capture,
  random,
  sidecars,
  slowCapture,
  tmpfs,
  waitForFile,
} from "../_store.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Each record belongs to its own crash and names its own archive. */
function assertOwnRecords(metas: Record<string, unknown>[]): void {
  const pids = metas.map((m) => m.pid);
  assert.equal(new Set(pids).size, pids.length, `pids ${pids}`);
  for (const m of metas) {
    const base = String(m._file).replace(/\.json$/, "");
    if (m.archive !== null) {
      assert.match(String(m.archive), new RegExp(`^${base}\\.(gz|zz)$`));
    } else {
      assert.ok(typeof m.reason === "string" && m.reason !== "", base);
    }
    assert.equal((m.capture as { state: string }).state, "done", base);
  }
}

Deno.test("invariants: crashes in the same second each keep their own record", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const core = random(200_000);
  const first = await capture(store, core, [
    "-P",
    "40061",
    "-r",
    "0",
    "-a",
    "prog",
  ]);
  const second = await capture(store, core, ["-P", "40062", "-a", "prog"]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /Cannot write the metadata/);
  const metas = await sidecars(store);
  assert.equal(metas.length, 2);
  assertOwnRecords(metas);
  const byPid = new Map(metas.map((m) => [m.pid, m]));
  assert.equal(byPid.get(40061)!.archive, null);
  assert.ok(byPid.get(40062)!.archive !== null);
  const archive = `${store}/${byPid.get(40062)!.archive}`;
  assert.equal(
    await pythonInflate(archive, 31),
    await fileDigestOf(core, dir.path),
  );
});

async function fileDigestOf(bytes: Uint8Array, dir: string): Promise<string> {
  const path = `${dir}/digest-${crypto.randomUUID()}`;
  await Deno.writeFile(path, bytes);
  const digest = await fileDigest(path);
  await Deno.remove(path);
  return digest;
}

Deno.test("invariants: 8 parallel crashes of one program: exactly 5 stored at the default rate, 8 records", async () => {
  await using dir = await tempDir();
  for (const round of [1, 2]) {
    const store = `${dir.path}/store${round}`;
    const core = random(300_000);
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          capture(store, core, [
            "-P",
            String(50_000 + i),
            "-E",
            "!usr!bin!looper",
            "-a",
            "looper",
          ]),
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const metas = await sidecars(store);
    assert.equal(metas.length, 8, `round ${round}`);
    assertOwnRecords(metas);
    const stored = metas.filter((m) => m.archive !== null);
    assert.equal(stored.length, 5, `round ${round}`);
    for (const m of metas.filter((m) => m.archive === null)) {
      assert.match(
        String(m.reason),
        /more than 5 cores of '\/usr\/bin\/looper'/,
      );
    }
    assert.deepEqual(
      (await archives(store)).sort(),
      stored.map((m) => String(m.archive)).sort(),
    );
  }
});

Deno.test("invariants: 20 parallel captures with --max-count 1 keep exactly one core, and no record lies", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const core = random(100_000);
  const results = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        capture(store, core, [
          "--max-count",
          "1",
          "-P",
          String(60_000 + i),
          "-a",
          `prog${i}`,
        ]),
    ),
  );
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const stored = await archives(store);
  assert.equal(
    stored.length,
    1,
    `${stored.join(" ")}\n${results.map((r) => r.stderr).join("")}`,
  );
  const metas = await sidecars(store);
  assertOwnRecords(metas);
  for (const m of metas) {
    if (m.archive !== null) assert.ok(stored.includes(String(m.archive)));
  }
  // Every "saved" line names a core that is there, or that a later capture
  // (not one running beside it) removed and said so.
  const removedBy = results.flatMap((r) =>
    [...r.stderr.matchAll(/removed (Core_\S+): more than --max-count/g)].map((
      m,
    ) => m[1])
  );
  for (const r of results) {
    const saved = /saved core of pid \d+ \(\d+ bytes\) to .*\/(Core_\S+)\.gz/
      .exec(r.stderr);
    if (saved === null) continue;
    assert.ok(
      stored.includes(`${saved[1]}.gz`) || removedBy.includes(saved[1]!),
      `${saved[1]} vanished without a word`,
    );
  }
});

Deno.test("invariants: a crash loop fills records, never evicts cores; records have their own bound", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const core = new TextEncoder().encode("core of a loop");
  const loop = ["--rate", "2/1h", "--max-count", "3", "-E", "!usr!bin!loop"];
  for (let i = 0; i < 8; i++) {
    const r = await capture(store, core, [
      ...loop,
      "-P",
      String(100 + i),
      "-a",
      "loop",
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  let metas = await sidecars(store);
  assert.equal(metas.filter((m) => m.archive !== null).length, 2);
  assert.equal(metas.length, 8);
  // Another program's core takes the third place; the loop's records do
  // not count as cores, so nothing is removed.
  const other = await capture(store, core, [
    "--max-count",
    "3",
    "-E",
    "!usr!bin!other",
    "-a",
    "other",
  ]);
  assert.doesNotMatch(other.stderr, /removed/);
  assert.equal(
    (await archives(store)).length,
    3,
  );
  // More loop crashes with a bound on records: records go, cores stay.
  for (let i = 0; i < 3; i++) {
    const r = await capture(store, core, [
      ...loop,
      "--max-records",
      "4",
      "-P",
      String(200 + i),
      "-a",
      "loop",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /removed \S+: more than --max-count/);
  }
  metas = await sidecars(store);
  assert.equal(metas.filter((m) => m.archive !== null).length, 3);
  assert.equal(metas.filter((m) => m.archive === null).length, 4);
});

Deno.test("invariants: a full disk keeps the record, with the size that came and why", async () => {
  await using fs = await tmpfs("19m");
  // Another program's file: the store's own limits do not see it coming.
  await Deno.writeFile(`${fs.path}/other-program.log`, random(6 << 20));
  const core = random(60 << 20);
  const result = await capture(fs.path, core, [
    "--keep-free",
    "0",
    "--max-use",
    "100%",
    "--rate",
    "1/1h",
    "-E",
    "!usr!bin!big",
    "-P",
    "4711",
    "-a",
    "big",
  ]);
  assert.equal(result.code, 1, "a lost core is a failure");
  assert.match(
    result.stderr,
    /lost core of pid 4711: Cannot write '.*': no space left on device: the partial core was removed, metadata only; metadata in .*\.json/,
  );
  const names = await listAll(fs.path);
  assert.ok(
    !names.some((n) => n.includes(".tmp-") || n.endsWith(".gz")),
    names.join(" "),
  );
  const [meta] = await sidecars(fs.path);
  assert.equal(meta!.archive, null);
  assert.equal(meta!.pid, 4711);
  assert.equal(meta!.core_size, 60 << 20);
  assert.equal(meta!.truncated, false);
  // The lost core was not counted by the rate limit: one that fits is stored.
  const small = await capture(fs.path, random(100_000), [
    "--keep-free",
    "0",
    "--rate",
    "1/1h",
    "-E",
    "!usr!bin!big",
    "-a",
    "big",
  ]);
  assert.equal(small.code, 0, small.stderr);
  assert.equal(
    (await archives(fs.path)).length,
    1,
    small.stderr,
  );
  const dmesg = text((await runTool("dmesg", [])).stdout);
  assert.ok(dmesg.includes("lost core of pid 4711: Cannot write"));
});

Deno.test("invariants: a --keep-free abort records the whole core's size", async () => {
  await using fs = await tmpfs("16m");
  const core = random(24 << 20);
  const result = await capture(fs.path, core, [
    "--keep-free",
    "6M",
    "--max-use",
    "100%",
    "-a",
    "kf",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    /dropped core: free space fell to \d+ bytes, under --keep-free/,
  );
  const [meta] = await sidecars(fs.path);
  assert.equal(meta!.archive, null);
  assert.equal(meta!.core_size, 24 << 20);
  assert.equal(meta!.truncated, false);
});

Deno.test("invariants: --max-use is a ceiling: a core larger than the store is cut at it, and readable", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await capture(store, random(20_000), ["-a", `old${i}`])).code,
      0,
    );
  }
  const core = random(6 << 20);
  const result = await capture(store, core, [
    "--max-use",
    "100K",
    "-a",
    "huge",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const used = (await Array.fromAsync(Deno.readDir(store)))
    .filter((e) => e.name.startsWith("Core_"));
  let bytes = 0;
  for (const e of used) bytes += (await Deno.stat(`${store}/${e.name}`)).size;
  assert.ok(bytes <= 100 * 1024, `the store uses ${bytes} bytes`);
  const meta = (await sidecars(store)).find((m) => m.argument === "huge")!;
  assert.equal(meta.truncated, true);
  assert.match(
    String(meta.reason),
    /cut at \d+ bytes of core .*--max-use 102400 bytes/,
  );
  const archive = `${store}/${meta.archive}`;
  const [length] = (await pythonInflate(archive, 31)).split(" ");
  assert.ok(Number(length) > 0 && Number(length) < core.length);
  const restored = await runMain(["-d", "-f", archive, "-o", "-"]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(restored.stdout, core.subarray(0, restored.stdout.length));
});

Deno.test("invariants: --max-age counts from when the core was stored, not the crash time it is named after", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  for (let i = 0; i < 3; i++) {
    assert.equal((await capture(store, data, ["-a", `fresh${i}`])).code, 0);
  }
  // A crash named in 2100, and one named at 0 (a board before NTP).
  const future = await capture(
    store,
    data,
    ["--max-age", "7", "-a", "future"],
    4102444800,
  );
  assert.doesNotMatch(future.stderr, /removed/);
  const zero = await capture(store, data, ["--max-age", "7", "-a", "zero"], 0);
  assert.doesNotMatch(zero.stderr, /removed/);
  assert.equal(
    (await archives(store)).length,
    5,
  );
  // They do age: two seconds later, with --max-age 1s, all go but the new one.
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const later = await capture(store, data, ["--max-age", "1s", "-a", "later"]);
  assert.equal(later.code, 0);
  assert.equal(
    [...later.stderr.matchAll(/removed \S+: older than --max-age/g)].length,
    5,
    later.stderr,
  );
  assert.deepEqual(
    (await archives(store)).map((n) => n.replace(/^Core_\d+_\d+_/, "")),
    ["later.gz"],
  );
});

Deno.test("invariants: a stored time that cannot be right is re-anchored, not trusted", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  for (const name of ["epoch", "future"]) {
    assert.equal((await capture(store, data, ["-a", name])).code, 0);
  }
  // As if stored in another boot by a clock at 0, and by one in 2100.
  for (const m of await sidecars(store)) {
    const capture = m.capture as Record<string, unknown>;
    capture.boot_id = "another-boot";
    capture.stored_wall_ms = m.argument === "epoch" ? 0 : Date.UTC(2100, 0, 1);
    delete m._file;
    const path = `${store}/${
      (await listDir(store)).find((n) => n.includes(`_${m.argument}.json`))
    }`;
    await Deno.writeTextFile(path, JSON.stringify(m));
  }
  const next = await capture(store, data, ["--max-age", "7", "-a", "next"]);
  assert.equal(next.code, 0);
  assert.doesNotMatch(next.stderr, /removed/);
  for (const m of await sidecars(store)) {
    const capture = m.capture as Record<string, number | string>;
    if (m.argument === "next") continue;
    assert.notEqual(
      capture.boot_id,
      "another-boot",
      "re-anchored to this boot",
    );
    assert.ok(Math.abs(Date.now() - Number(capture.stored_wall_ms)) < 60_000);
  }
});

for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  Deno.test(`invariants: ${signal} mid-capture finishes the record, removes the temporary file, exits non-zero`, async () => {
    await using dir = await tempDir();
    const store = `${dir.path}/store`;
    const run = slowCapture([
      "-c",
      "-p",
      store,
      "-P",
      "777",
      "--rate",
      "1/1h",
      "-E",
      "!usr!bin!sig",
      "-a",
      "sig",
    ]);
    await run.write(random(3 << 20));
    await waitForFile(store, /^\.Core_.*\.gz\.tmp-/);
    Deno.kill(run.pid, signal);
    const result = await run.result();
    const number = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal];
    assert.equal(result.code, 128 + number, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `dropped core of pid 777: interrupted by ${signal} while capturing: the partial core was removed`,
      ),
    );
    const names = await listAll(store);
    assert.ok(
      !names.some((n) => n.includes(".tmp-") || n.endsWith(".gz")),
      names.join(" "),
    );
    const [meta] = await sidecars(store);
    assert.equal(meta!.archive, null);
    assert.equal((meta!.capture as { state: string }).state, "interrupted");
    const dmesg = text((await runTool("dmesg", [])).stdout);
    assert.ok(dmesg.includes(`interrupted by ${signal} while capturing`));
    // Not counted by the rate limit.
    const again = await capture(store, random(10_000), [
      "--rate",
      "1/1h",
      "-E",
      "!usr!bin!sig",
      "-a",
      "sig",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      (await archives(store)).length,
      1,
      again.stderr,
    );
  });
}

Deno.test("invariants: a slow live capture keeps its temporary file; a killed one is marked interrupted", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const slow = slowCapture(["-c", "-p", store, "-P", "901", "-a", "slow"]);
  const head = random(2 << 20);
  await slow.write(head);
  const temp = await waitForFile(store, /^\.Core_.*_slow\.gz\.tmp-/);
  // Its file is old, as after a long stall: age alone must not condemn it.
  const old = new Date(Date.now() - 3_600_000);
  await Deno.utime(`${store}/${temp}`, old, old);
  const other = await capture(store, random(10_000), ["-a", "other"]);
  assert.equal(other.code, 0, other.stderr);
  assert.ok(
    (await listAll(store)).includes(temp),
    "the live capture's file stays",
  );
  const tail = random(1 << 20);
  await slow.write(tail);
  await slow.end();
  const result = await slow.result();
  assert.equal(result.code, 0, result.stderr);
  const meta = (await sidecars(store)).find((m) => m.argument === "slow")!;
  assert.equal(meta.core_size, 3 << 20);
  assert.notEqual(meta.archive, null);

  // SIGKILL leaves the record under way; the next capture says it ended.
  const killed = slowCapture(["-c", "-p", store, "-P", "902", "-a", "killed"]);
  await killed.write(random(2 << 20));
  const killedTemp = await waitForFile(store, /^\.Core_.*_killed\.gz\.tmp-/);
  Deno.kill(killed.pid, "SIGKILL");
  await killed.result();
  const next = await capture(store, random(10_000), ["-a", "next"]);
  assert.match(next.stderr, /marked Core_\S+_killed interrupted/);
  assert.ok(!(await listAll(store)).includes(killedTemp));
  const record = (await sidecars(store)).find((m) => m.argument === "killed")!;
  assert.equal(record.pid, 902);
  assert.equal(record.archive, null);
  assert.equal((record.capture as { state: string }).state, "interrupted");
  assert.match(String(record.reason), /the capture ended before it finished/);
});

Deno.test("invariants: a damaged lock or rate state is a warning; the core is stored", async () => {
  await using dir = await tempDir();
  for (
    const [name, make] of [
      [".gzcoredump-rate.json", (p: string) => Deno.mkdir(p)],
      [".gzcoredump.lock", (p: string) => Deno.mkdir(p)],
      [
        ".gzcoredump-rate.json",
        (p: string) => Deno.writeTextFile(p, "{not json"),
      ],
    ] as const
  ) {
    const store = `${dir.path}/store-${crypto.randomUUID().slice(0, 6)}`;
    await Deno.mkdir(store, { mode: 0o700 });
    await make(`${store}/${name}`);
    const result = await capture(store, random(50_000), ["-a", "kept"]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /os error|lost core/);
    assert.match(result.stderr, new RegExp(name.replaceAll(".", "\\.")));
    assert.equal(
      (await archives(store)).length,
      1,
    );
  }
  // An immutable rate state (chattr +i) too.
  const store = `${dir.path}/immutable`;
  assert.equal((await capture(store, random(1000), ["-a", "first"])).code, 0);
  const state = `${store}/.gzcoredump-rate.json`;
  await runTool("chattr", ["+i", state]);
  try {
    const result = await capture(store, random(50_000), ["-a", "kept"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      (await archives(store)).length,
      2,
    );
    assert.match(result.stderr, /Cannot update the rate state/);
    assert.doesNotMatch(result.stderr, /os error/);
  } finally {
    await runTool("chattr", ["-i", state]);
  }
});

Deno.test("invariants: an empty core is recorded as metadata only and not counted", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const rate = ["--rate", "1/1h", "-E", "!usr!bin!empty", "-a", "empty"];
  const empty = await capture(store, new Uint8Array(0), [...rate, "-P", "5"]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stderr, /dropped core of pid 5: empty core \(0 bytes\)/);
  const [meta] = await sidecars(store);
  assert.equal(meta!.archive, null);
  assert.equal(meta!.core_size, 0);
  const next = await capture(store, random(1000), rate);
  assert.equal(next.code, 0, next.stderr);
  assert.equal(
    (await archives(store)).length,
    1,
    next.stderr,
  );
});

Deno.test("invariants: '--' ends the options: a split name cannot inject one", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = new TextEncoder().encode("core");
  for (let i = 0; i < 3; i++) {
    assert.equal((await capture(store, data, ["-a", `keep${i}`])).code, 0);
  }
  // What a pre-5.3 kernel passes for `-- %e` of a process named "x --max-age=0".
  const result = await capture(store, data, [
    "--",
    "x",
    "--max-age=0",
    "--max-count",
    "1",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /removed/);
  assert.equal(
    (await archives(store)).length,
    4,
  );
  const meta = (await sidecars(store)).find((m) =>
    String(m.argument).startsWith("x ")
  )!;
  assert.equal(meta.argument, "x --max-age=0 --max-count 1");
});

Deno.test("invariants: -j is capped at one thread per core in capture mode", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const result = await capture(store, random(4 << 20), [
    "-j",
    "256",
    "-a",
    "jobs",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const cpus = navigator.hardwareConcurrency;
  assert.match(
    result.stderr,
    new RegExp(`used ${Math.min(cpus, 16)} compression threads, not 256`),
  );
});

Deno.test("invariants: a capture that cannot be stored removes nothing, for --max-use or --keep-free", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  for (let i = 0; i < 3; i++) {
    await capture(store, new Uint8Array(0), [
      "-P",
      String(700 + i),
      "-a",
      `empty${i}`,
    ]);
  }
  await capture(store, random(20_000), ["-P", "710", "-a", "core"]);
  const tiny = await capture(store, random(200_000), [
    "--max-use",
    "1K",
    "-P",
    "711",
    "-a",
    "tiny",
  ]);
  assert.equal(tiny.code, 0, tiny.stderr);
  assert.doesNotMatch(tiny.stderr, /removed/);
  assert.match(tiny.stderr, /--max-use 1024 bytes leaves no room for a core/);
  const metas = await sidecars(store);
  assert.deepEqual(metas.map((m) => m.pid).sort(), [700, 701, 702, 710, 711]);
  assert.equal((await archives(store)).length, 1);

  await using fs = await tmpfs("1m");
  for (let i = 0; i < 3; i++) {
    await capture(fs.path, new Uint8Array(0), [
      "-P",
      String(720 + i),
      "-a",
      `e${i}`,
    ]);
  }
  await Deno.writeFile(`${fs.path}/filler`, random(900_000));
  const kf = await capture(fs.path, random(200_000), ["-P", "724", "-a", "kf"]);
  assert.equal(kf.code, 0, kf.stderr);
  assert.doesNotMatch(kf.stderr, /removed/);
  assert.match(kf.stderr, /--keep-free is \d+: metadata only/);
  await Deno.remove(`${fs.path}/filler`);
  assert.equal((await sidecars(fs.path)).length, 4);
});

Deno.test("invariants: a core removed for room keeps its crash's record; a nearly full disk still gets one", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  await capture(store, random(20_000), ["-P", "801", "-a", "first"]);
  const second = await capture(store, random(20_000), [
    "--max-count",
    "1",
    "-P",
    "802",
    "-a",
    "second",
  ]);
  assert.match(
    second.stderr,
    /removed \S+_first: more than --max-count 1 cores/,
  );
  const first = (await sidecars(store)).find((m) => m.pid === 801)!;
  assert.equal(first.archive, null);
  assert.match(
    String(first.reason),
    /the core was removed at .* to make room: more than --max-count 1 cores/,
  );
  assert.deepEqual((await archives(store)).length, 1);

  await using fs = await tmpfs("1m");
  await Deno.writeFile(`${fs.path}/filler`, random(1_024_000));
  const full = await capture(fs.path, random(200_000), [
    "--keep-free",
    "0",
    "-P",
    "803",
    "-a",
    "nearfull",
  ]);
  await Deno.remove(`${fs.path}/filler`);
  assert.equal(full.code, 1, full.stderr);
  assert.match(full.stderr, /lost core of pid 803: .*no space left on device/);
  const [record] = await sidecars(fs.path);
  assert.equal(record?.pid, 803, "the record is there");
  assert.equal(record?.archive, null);
});

Deno.test("invariants: a killed capture is not counted by the rate limit, even once its record is gone", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const rate = ["--rate", "2/1h", "--max-records", "1", "-E", "!usr!bin!app"];
  const killed = slowCapture([
    "-c",
    "-p",
    store,
    "-P",
    "901",
    ...rate,
    "-a",
    "A",
  ]);
  await killed.write(random(2 << 20));
  await waitForFile(store, /^\.Core_.*_A\.gz\.tmp-/);
  Deno.kill(killed.pid, "SIGKILL");
  await killed.result();
  await capture(store, new Uint8Array(0), [...rate, "-P", "902", "-a", "E"]);
  await capture(store, random(10_000), [...rate, "-P", "903", "-a", "B"]);
  const c = await capture(store, random(10_000), [
    ...rate,
    "-P",
    "904",
    "-a",
    "C",
  ]);
  assert.doesNotMatch(c.stderr, /more than 2 cores/);
  assert.equal((await archives(store)).length, 2);
});

Deno.test("invariants: odd names and paths: a planted directory, a time past 9999, an --exe with '..'", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  await Deno.mkdir(store, { mode: 0o700 });
  const t = 1796119000;
  const name = `Core_${
    new Date(t * 1000).toISOString().replace(/[-:]/g, "").replace("T", "_")
      .slice(0, 15)
  }_app`;
  await Deno.mkdir(`${store}/${name}.gz`);
  await Deno.symlink(`${dir.path}/elsewhere`, `${store}/${name}-2.gz`);
  const planted = await capture(store, random(10_000), ["-a", "app"], t);
  assert.equal(planted.code, 0, planted.stderr);
  assert.ok((await archives(store)).includes(`${name}-3.gz`));

  const far = await capture(store, random(10_000), ["-a", "far"], 253402300800);
  assert.equal(far.code, 0, far.stderr);
  assert.match(
    far.stderr,
    /ignored time 253402300800: expected a time before the year 10000/,
  );
  assert.ok(
    (await archives(store)).some((n) => /^Core_\d{8}_\d{6}_far\.gz$/.test(n)),
  );

  await Deno.writeTextFile(`${dir.path}/secret`, "root:x:0:0");
  const traversal = await capture(store, random(10_000), [
    "-E",
    `${dir.path.replaceAll("/", "!")}!store!..!secret`,
    "-a",
    "trav",
  ]);
  assert.match(
    traversal.stderr,
    /ignored --exe '.*': expected an absolute path without '\.\.'/,
  );
  assert.doesNotMatch(traversal.stderr, /72 6f 6f 74|magic/);
});
