/**
 * Capture as the kernel runs it, fed real cores: what lands next to the
 * archive (.txt, .json) and what it says, checked against eu-readelf and
 * eu-unstrip. The end-to-end path through core_pattern is in e2e_test.ts.
 */
import assert from "node:assert/strict";
import { stampUuid } from "../../lib/cli/mod.ts";
import { directFlag } from "../../lib/fs/_direct_io.ts";
import { extraFieldEnd, readGzipIndex } from "../../lib/compress/mod.ts";
import {
  buildCrasher,
  check,
  listAll,
  listDir,
  mainCommand,
  runMain,
  runTool,
  spillDescriptors,
  tempDir,
  waitFor,
} from "../_helpers.ts";
import { euUnstripModules, readelfBuildId } from "../_readelf.ts";
import { sidecars, type SlowCapture, slowCapture } from "../_store.ts";

/** Starts the crash program waiting in pause(); gcore writes its core. */
async function liveProcess(program: string, dir: string) {
  const child = new Deno.Command(program, {
    args: ["wait"],
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read();
  reader.releaseLock();
  return {
    pid: child.pid,
    async gcore(): Promise<string> {
      await check("gcore", ["-o", `${dir}/gcore`, String(child.pid)]);
      return `${dir}/gcore.${child.pid}`;
    },
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function sidecar(store: string): Promise<Record<string, unknown>> {
  const name = (await listDir(store)).find((n) => n.endsWith(".json"));
  assert.ok(name, `no .json in ${store}`);
  return JSON.parse(await Deno.readTextFile(`${store}/${name}`));
}

Deno.test("capture copies the program's .uuid through /proc/<pid>/exe and records who crashed", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "uuid_prog");
  await stampUuid(program, { uuid: "9c1a-board-7" });
  await using live = await liveProcess(program, dir.path);
  const core = await live.gcore();
  const store = `${dir.path}/store`;
  const result = await runMain([
    "-c",
    "-p",
    store,
    "-P",
    String(live.pid),
    "-s",
    "11",
    "-a",
    "uuid_prog",
  ], {
    stdin: { path: core },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const names = await listDir(store);
  const txt = names.find((n) => n.endsWith(".txt"))!;
  assert.match(txt, /^Core_\d{8}_\d{6}_uuid_prog\.txt$/);
  assert.deepEqual(
    await Deno.readFile(`${store}/${txt}`),
    new TextEncoder().encode("9c1a-board-7\n"),
  );
  assert.equal((await Deno.stat(`${store}/${txt}`)).mode! & 0o777, 0o600);
  const meta = await sidecar(store);
  assert.equal(meta.uuid, "9c1a-board-7\n");
  assert.equal(meta.uuid_file, txt);
  assert.equal(meta.program_source, `/proc/${live.pid}/exe`);
  assert.equal(meta.exe, program);
  assert.equal(meta.pid, live.pid);
  assert.equal(meta.comm, "uuid_prog");
  assert.deepEqual(meta.cmdline, [program, "wait"]);
  assert.equal(meta.signal_name, "SIGSEGV");
  assert.equal(meta.threads, 1);
  assert.equal(typeof meta.cgroup, "string");
  assert.equal((meta.status as Record<string, string>).Name, "uuid_prog");
  assert.ok(
    !JSON.stringify(meta).includes("PATH="),
    "the environment is never recorded",
  );
  // gdb writes its notes after the memory, so in one pass over a gcore only
  // the modules' names and ranges are known; the build-id comes from the
  // program. (Kernel cores, notes first, give every module's build-id: see
  // core_inspector_test.ts and e2e_test.ts.)
  const golden = await euUnstripModules(core);
  const modules = meta.modules as { start: string; path: string }[];
  assert.deepEqual(
    modules.map((m) => BigInt(m.start)).sort(),
    golden.map((m) => m.start).sort(),
  );
  assert.equal(modules[0]!.path, program);
  assert.equal(meta.build_id, await readelfBuildId(program));
  assert.equal(meta.truncated, false);
  assert.equal(meta.core_size, (await Deno.stat(core)).size);
  assert.equal(meta.expected_size, meta.core_size);
  // The archive indexes its chunks for parallel decompression, with room
  // sized by the core's own headers (it arrived through a pipe).
  const gz = await Deno.readFile(
    `${store}/${names.find((n) => n.endsWith(".gz"))}`,
  );
  const index = readGzipIndex(gz.subarray(0, extraFieldEnd(gz)), gz.length);
  assert.ok(index !== undefined, "an index that fits the archive");
  const chunks = Math.ceil(Number(meta.core_size) / index.chunkSize);
  assert.equal(index.lengths.length, chunks);
  assert.equal(index.headerLength, 12 + 4 + 8 + 4 * (chunks + chunks % 2));
});

Deno.test("capture reads a deleted program through /proc/<pid>/exe", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "deleted_prog");
  await stampUuid(program, { uuid: "deleted-but-known" });
  await using live = await liveProcess(program, dir.path);
  await Deno.remove(program);
  const core = await live.gcore();
  const store = `${dir.path}/store`;
  const result = await runMain([
    "-c",
    "-p",
    store,
    "-P",
    String(live.pid),
    "-E",
    program.replaceAll("/", "!"),
  ], {
    stdin: { path: core },
  });
  assert.equal(result.code, 0, result.stderr);
  const meta = await sidecar(store);
  assert.equal(meta.uuid, "deleted-but-known\n");
  assert.equal(meta.program_source, `/proc/${live.pid}/exe`);
});

Deno.test("capture falls back to --exe, and distrusts a pid that now belongs to another program", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "exe_prog");
  await stampUuid(program, { uuid: "from-exe" });
  await using live = await liveProcess(program, dir.path);
  const core = await live.gcore();
  // A pid that is alive but is another program: as if the pid was reused.
  const other = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const store = `${dir.path}/store`;
    const result = await runMain(
      [
        "-c",
        "-p",
        store,
        "-P",
        String(other.pid),
        "-E",
        program.replaceAll("/", "!"),
        "-a",
        "exe_prog",
      ],
      { stdin: { path: core } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `ignored /proc/${other.pid}: it is 'sleep', the core is of 'exe_prog' \\(the pid was reused\\)`,
      ),
    );
    const meta = await sidecar(store);
    assert.equal(meta.uuid, "from-exe\n");
    assert.equal(meta.program_source, program);
    assert.equal(meta.cgroup, null, "nothing from the other process's /proc");
    assert.match((meta.warnings as string[]).join("\n"), /the pid was reused/);
  } finally {
    other.kill();
    await other.status;
  }
});

Deno.test("capture of a program without .uuid writes no .txt and records uuid null", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "plain_prog");
  await using live = await liveProcess(program, dir.path);
  const core = await live.gcore();
  const store = `${dir.path}/store`;
  const result = await runMain(["-c", "-p", store, "-P", String(live.pid)], {
    stdin: { path: core },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    (await listDir(store)).filter((n) => n.endsWith(".txt")).length,
    0,
  );
  const meta = await sidecar(store);
  assert.equal(meta.uuid, null);
  assert.equal(meta.uuid_file, null);
  assert.notEqual(meta.build_id, null);
});

Deno.test("capture of a truncated core stores what came and marks it truncated", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "cut_prog");
  await using live = await liveProcess(program, dir.path);
  const core = await live.gcore();
  const bytes = await Deno.readFile(core);
  const cut = bytes.subarray(0, bytes.length - 100_000);
  const store = `${dir.path}/store`;
  const result = await runMain(["-c", "-p", store], { stdin: cut });
  assert.equal(result.code, 0, result.stderr);
  const meta = await sidecar(store);
  assert.equal(meta.truncated, true);
  assert.equal(meta.core_size, cut.length);
  assert.equal(meta.expected_size, bytes.length);
  const gz = (await listDir(store)).find((n) => n.endsWith(".gz"))!;
  const restored = await runMain(["-d", "-f", `${store}/${gz}`, "-o", "-"]);
  assert.deepEqual(restored.stdout, cut, "every byte that came is kept");
});

Deno.test("info describes a stored core, a raw core and a program; --json has the sidecar's fields", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "info_prog");
  await stampUuid(program, { uuid: "info-uuid" });
  await using live = await liveProcess(program, dir.path);
  const core = await live.gcore();
  const store = `${dir.path}/store`;
  assert.equal(
    (await runMain([
      "-c",
      "-p",
      store,
      "-P",
      String(live.pid),
      "-a",
      "info_prog",
    ], { stdin: { path: core } })).code,
    0,
  );
  const gz = (await listDir(store)).find((n) => n.endsWith(".gz"))!;
  const stored = await sidecar(store);

  const json = await runMain(["info", `${store}/${gz}`, "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const described = JSON.parse(new TextDecoder().decode(json.stdout));
  assert.deepEqual(Object.keys(described).sort(), Object.keys(stored).sort());
  // Named from the record's trace (the core stays packed): the same fields,
  // those the capture left null included.
  const named = await runMain([
    "info",
    `${store}/${gz}`,
    "--symbolize",
    "--json",
  ], {
    env: { DEBUGINFOD_URLS: "" },
  });
  assert.equal(named.code, 0, named.stderr);
  assert.deepEqual(
    Object.keys(JSON.parse(new TextDecoder().decode(named.stdout))).sort(),
    Object.keys(stored).sort(),
  );
  for (
    const field of [
      "pid",
      "uid",
      "gid",
      "comm",
      "exe",
      "cmdline",
      "uuid",
      "build_id",
      "threads",
      "modules",
      "core_size",
      "expected_size",
      "truncated",
      "archive",
      "compressed_size",
    ]
  ) {
    assert.deepEqual(described[field], stored[field], field);
  }

  const text = new TextDecoder().decode(
    (await runMain(["info", `${store}/${gz}`])).stdout,
  );
  assert.match(text, /^File:\s+.*\.gz \(gzip, \d+ bytes\)$/m);
  assert.match(
    text,
    new RegExp(
      `^Process:\\s+pid ${live.pid} \\(info_prog\\), uid 0, gid 0, 1 thread$`,
      "m",
    ),
  );
  assert.match(text, /^UUID:\s+"info-uuid\\n"$/m);
  assert.match(text, new RegExp(`^Build-id:\\s+${stored.build_id}$`, "m"));
  assert.match(text, /^Core:\s+\d+ bytes, complete, ELF64 EM_X86_64$/m);

  const raw = JSON.parse(
    new TextDecoder().decode((await runMain(["info", core, "--json"])).stdout),
  );
  assert.equal(raw.pid, live.pid);
  assert.equal(raw.build_id, stored.build_id);
  // On a raw file, info reads gcore's module pages too, as eu-unstrip does.
  const golden = await euUnstripModules(core);
  assert.deepEqual(
    (raw.modules as { start: string; build_id: string }[]).map((
      m,
    ) => [BigInt(m.start), m.build_id]).sort(),
    golden.map((m) => [m.start, m.buildId]).sort(),
  );

  const prog = new TextDecoder().decode(
    (await runMain(["info", program])).stdout,
  );
  assert.match(
    prog,
    /^ELF:\s+ELF64 little-endian EM_X86_64 ET_DYN, \d+ segments, \d+ sections$/m,
  );
  assert.match(prog, /^UUID:\s+"info-uuid\\n"$/m);
  assert.match(prog, new RegExp(`^Build-id:\\s+${stored.build_id}$`, "m"));

  await Deno.writeTextFile(`${dir.path}/notes.txt`, "hello");
  const bad = await runMain(["info", `${dir.path}/notes.txt`]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /^gzcoredump: Cannot parse ELF: found magic 68 65 6c 6c at offset 0x0, expected 7f 45 4c 46\n$/,
  );
});

Deno.test("capture distrusts a pid whose process started after the crash (the same program, started again)", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "again_prog");
  await stampUuid(program, { uuid: "again" });
  await using live = await liveProcess(program, dir.path);
  const core = await live.gcore();
  const hourAgo = Math.floor(Date.now() / 1000) - 3600;
  const store = `${dir.path}/store`;
  const result = await runMain([
    "-c",
    "-p",
    store,
    "-P",
    String(live.pid),
    "-t",
    String(hourAgo),
  ], {
    stdin: { path: core },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    new RegExp(
      `ignored /proc/${live.pid}: it started at \\S+, after the crash at \\S+ \\(the pid was reused\\)`,
    ),
  );
  const meta = await sidecar(store);
  assert.equal(meta.uuid, null, "nothing read from the wrong process");
  assert.equal(meta.cgroup, null);
});

/** Text records like the benchmark's mixed core: they deflate 7 to 1. */
function records(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes).fill(0x20);
  const encoder = new TextEncoder();
  for (let i = 0; i + 64 <= bytes; i += 64) {
    const n = i / 64;
    encoder.encodeInto(
      `record ${n} name=item${n % 1000} value=${(i * 7) % 100000};`,
      out.subarray(i, i + 64),
    );
  }
  return out;
}

/**
 * Writes `bytes` 256 KiB at a time, 20 ms apart (slower than any capture),
 * ends the input, and expects the capture to succeed.
 */
async function finishSlowly(capture: SlowCapture, bytes: Uint8Array) {
  const part = 256 << 10;
  for (let at = 0; at < bytes.length; at += part) {
    await capture.write(bytes.subarray(at, at + part));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await capture.end();
  const result = await capture.result();
  assert.equal(result.code, 0, result.stderr);
}

/** gzip finds the archive sound, and it inflates to exactly `core`. */
async function assertArchiveHolds(archive: string, core: Uint8Array) {
  await check("sh", ["-c", `gzip -t ${archive}`]);
  const inflated = await new Response(
    (await Deno.open(archive)).readable.pipeThrough(
      new DecompressionStream("gzip"),
    ),
  ).arrayBuffer();
  assert.deepEqual(new Uint8Array(inflated), core);
}

/** The one record in a store. */
async function storedRecord(store: string) {
  const records = await sidecars(store);
  assert.equal(records.length, 1, records.map((r) => r._file).join(" "));
  // deno-lint-ignore no-explicit-any
  return records[0] as Record<string, any>;
}

Deno.test("capture: blocks read while the writer waits on a full pipe are deflated at level 2, and the record counts them", async () => {
  await using dir = await tempDir();
  const core = records(48 << 20);
  const blocks = core.length >> 20;
  // All at once: the writer always waits on the pipe (no spill file: the
  // capture reads at the compressor's pace).
  const pressed = `${dir.path}/pressed`;
  const fast = await runMain(
    ["-c", "-p", pressed, "-a", "text", "--spill-max", "0"],
    { stdin: core },
  );
  assert.equal(fast.code, 0, fast.stderr);
  const fastRecord = await storedRecord(pressed);
  assert.ok(
    fastRecord.pressed_blocks >= blocks / 2,
    `pressed_blocks ${fastRecord.pressed_blocks} of ${blocks}`,
  );
  assert.equal(fastRecord.level, 5);
  await assertArchiveHolds(`${pressed}/${fastRecord.archive}`, core);
  // An explicit level is kept whatever the pipe: smaller, and no count.
  const fixed = `${dir.path}/fixed`;
  const five = await runMain(
    ["-c", "-p", fixed, "-l", "5", "-a", "text", "--spill-max", "0"],
    { stdin: core },
  );
  assert.equal(five.code, 0, five.stderr);
  const fixedRecord = await storedRecord(fixed);
  assert.equal(fixedRecord.pressed_blocks, undefined);
  assert.ok(
    fixedRecord.compressed_size < fastRecord.compressed_size,
    `${fixedRecord.compressed_size} < ${fastRecord.compressed_size}`,
  );
  // A writer slower than the capture never fills the pipe.
  const slowStore = `${dir.path}/slow`;
  const slow = slowCapture(["-c", "-p", slowStore, "-a", "text"]);
  await finishSlowly(slow, core.subarray(0, 8 << 20));
  const slowRecord = await storedRecord(slowStore);
  assert.ok(
    slowRecord.pressed_blocks < 2,
    `pressed_blocks ${slowRecord.pressed_blocks} of 8`,
  );
});

Deno.test("capture: the faster level holds for PRESSURE_HOLD blocks after the pipe was last seen full, then the default comes back", async () => {
  await using dir = await tempDir();
  const core = records(22 << 20);
  const store = `${dir.path}/store`;
  const capture = slowCapture([
    "-c",
    "-p",
    store,
    "-a",
    "text",
    "--spill-max",
    "0",
  ]);
  // 6 MiB at once: every read finds the pipe full.
  const burst = 6 << 20;
  await capture.write(core.subarray(0, burst));
  // Then a writer the capture keeps up with: no read finds it full.
  await finishSlowly(capture, core.subarray(burst));
  const record = await storedRecord(store);
  // The hold (PRESSURE_HOLD, 8) after the burst's last full pipe, and not
  // the 16 slow blocks: how many of the burst's blocks find the pipe full
  // depends on how fast this process refills it (all of them, or 3).
  const pressed = record.pressed_blocks;
  assert.ok(
    pressed >= 8 && pressed <= 6 + 8 + 2,
    `pressed_blocks ${pressed} of 22, expected the hold of 8 and at most 6 + 8`,
  );

  await assertArchiveHolds(`${store}/${record.archive}`, core);
});

/** The nice value of each thread of a process, by thread id. */
function threadNices(pid: number): Map<number, number> {
  const nices = new Map<number, number>();
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`);
      nices.set(Number(task.name), Number(stat.split(") ")[1]!.split(" ")[16]));
    } catch {
      // The thread ended.
    }
  }
  return nices;
}

Deno.test("capture: blocks the workers cannot take yet wait in an unlinked spill file, the workers step back to nice 19, and the record counts the blocks", async () => {
  await using dir = await tempDir();
  const core = records(48 << 20);
  const store = `${dir.path}/store`;
  const capture = slowCapture(["-c", "-p", store, "-a", "text"]);
  // The first blocks, then a look at the threads while the workers have
  // work: the main thread keeps its nice value, two workers are at 19.
  await capture.write(core.subarray(0, 8 << 20));
  const workers = Math.min(2, navigator.hardwareConcurrency);
  const nices = await waitFor(() => {
    const found = threadNices(capture.pid);
    const niced = [...found.values()].filter((n) => n === 19).length;
    return Promise.resolve(niced >= workers ? found : undefined);
  }, 30);
  const own = threadNices(Deno.pid).get(Deno.pid);
  assert.equal(nices.get(capture.pid), own, "the main thread is not niced");
  // While it runs, its spill file is open and has no name: one file, open
  // twice (the second descriptor bypasses the page cache, O_DIRECT).
  const open = spillDescriptors(capture.pid);
  assert.equal(open.length, 2, open.map((d) => d.target).join(" "));
  assert.equal(open[0]!.target, open[1]!.target);
  assert.match(open[0]!.target, / \(deleted\)$/);
  const flags = open.map((d) => d.flags & directFlag()!);
  assert.deepEqual(flags.sort(), [0, directFlag()]);
  // The rest all at once: the reads outrun the workers.
  await capture.write(core.subarray(8 << 20));
  await capture.end();
  const result = await capture.result();
  assert.equal(result.code, 0, result.stderr);
  const record = await storedRecord(store);
  assert.ok(
    record.spilled_blocks > 0 && record.spilled_blocks <= 48,
    `spilled_blocks ${record.spilled_blocks} of 48`,
  );
  await assertArchiveHolds(`${store}/${record.archive}`, core);
  // Nothing of the spill file is left.
  const left = (await listAll(store)).filter((name) => name.includes("spill"));
  assert.deepEqual(left, []);
  // --spill-max 0: none, and no count in the record.
  const none = `${dir.path}/none`;
  const plain = await runMain(
    ["-c", "-p", none, "-a", "text", "--spill-max", "0"],
    { stdin: core },
  );
  assert.equal(plain.code, 0, plain.stderr);
  const plainRecord = await storedRecord(none);
  assert.equal(plainRecord.spilled_blocks, undefined);
  await assertArchiveHolds(`${none}/${plainRecord.archive}`, core);
});

Deno.test("capture gives the pipe it read back blocking, for whoever shares it after the capture", async () => {
  await using dir = await tempDir();
  const core = records(4 << 20);
  // The shell's standard input is the same open pipe as the capture's;
  // `grep` reads its flags once the capture has let the pipe go and exited.
  const shared = await runTool("sh", [
    "-c",
    `"$@" -c -p '${dir.path}/store' -a text -- shared && grep '^flags' /proc/self/fdinfo/0`,
    "sh",
    ...mainCommand(),
  ], { stdin: core });
  assert.equal(shared.code, 0, shared.stderr);
  const flags = /^flags:\s*(\d+)/m.exec(
    new TextDecoder().decode(shared.stdout),
  );
  assert.ok(flags !== null, new TextDecoder().decode(shared.stdout));
  const O_NONBLOCK = 0o4000;
  assert.equal(parseInt(flags[1]!, 8) & O_NONBLOCK, 0, `flags ${flags[1]}`);
  const record = await storedRecord(`${dir.path}/store`);
  await assertArchiveHolds(`${dir.path}/store/${record.archive}`, core);
});
