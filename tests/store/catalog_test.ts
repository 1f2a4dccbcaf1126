/**
 * Finding stored cores again: list, info ID, extract and debug, on cores
 * of a program that really crashed.
 */
import assert from "node:assert/strict";
import {
  CoreNotFoundError,
  findCore,
  readCatalog,
} from "../../lib/store/mod.ts";
import {
  buildCrasher,
  fileDigest,
  kernelCore,
  listAll,
  listDir,
  runMain,
  tempDir,
} from "../_helpers.ts";

const NOW = Math.floor(Date.now() / 1000);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A store with two crashes of "alpha" and one of "beta", real cores. */
async function populatedStore(dir: string) {
  const alpha = await buildCrasher(dir, "alpha");
  const beta = await buildCrasher(dir, "beta");
  const alphaCore = await kernelCore(alpha, [], dir);
  const betaCore = await kernelCore(beta, ["abort"], dir);
  const store = `${dir}/store`;
  const add = async (
    core: string,
    program: string,
    t: number,
    pid: number,
    signal: number,
  ) => {
    const result = await runMain([
      "-c",
      "-p",
      store,
      "-t",
      String(t),
      "-P",
      String(pid),
      "-s",
      String(signal),
      "-E",
      program.replaceAll("/", "!"),
      "-a",
      program.split("/").pop()!,
    ], { stdin: { path: core } });
    assert.equal(result.code, 0, result.stderr);
  };
  await add(alphaCore, alpha, NOW - 7200, 1001, 11);
  await add(betaCore, beta, NOW - 3600, 1002, 6);
  await add(alphaCore, alpha, NOW - 60, 1003, 11);
  return { store, alpha, beta, alphaCore, betaCore };
}

Deno.test("list shows one line per core, newest last, and filters by program, pid and time", async () => {
  await using dir = await tempDir();
  const { store } = await populatedStore(dir.path);
  const all = await runMain(["list", "-p", store]);
  assert.equal(all.code, 0, all.stderr);
  const lines = text(all.stdout).trim().split("\n");
  assert.match(
    lines[0]!,
    /^TIME\s+PID\s+UID\s+GID\s+SIG\s+COREFILE\s+EXE\s+SIZE\s+RATIO\s+FUNCTION\s+FILE$/,
  );
  assert.equal(lines.length, 4);
  assert.match(
    lines[1]!,
    // The crash program dereferences NULL in main: its top function.
    /\s1001\s+\d+\s+\d+\s+SIGSEGV\s+stored\s+\S+\/alpha\s+[\d.]+ MiB\s+[\d.]+x\s+main\s+Core_\d{8}_\d{6}_alpha\.gz$/,
  );
  assert.match(
    lines[2]!,
    /\s1002\s+\d+\s+\d+\s+SIGABRT\s+stored\s+\S+\/beta\s/,
  );
  assert.match(
    lines[3]!,
    /\s1003\s+\d+\s+\d+\s+SIGSEGV\s+stored\s+\S+\/alpha\s/,
  );
  // Local time by default, UTC with --utc; no header with --no-legend.
  const tokyo = await runMain(["list", "-p", store, "--no-legend"], {
    env: { TZ: "Asia/Tokyo" },
  });
  const utc = await runMain(["list", "-p", store, "--utc", "--no-legend"], {
    env: { TZ: "Asia/Tokyo" },
  });
  const first = (r: { stdout: Uint8Array }) => text(r.stdout).split("\n")[0]!;
  const at = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)/;
  const local = at.exec(first(tokyo))!;
  const universal = at.exec(first(utc))!;
  assert.equal(universal[2], "UTC");
  assert.equal(local[2], "GMT+9");
  assert.equal(
    new Date(`${local[1]!.replace(" ", "T")}+09:00`).getTime(),
    new Date(`${universal[1]!.replace(" ", "T")}Z`).getTime(),
  );
  assert.equal(text(tokyo.stdout).trim().split("\n").length, 3);
  // Newest first, the newest only, the last two.
  const pids = async (args: string[]) =>
    JSON.parse(
      text((await runMain(["list", "-p", store, "--json", ...args])).stdout),
    )
      .map((r: { pid: number }) => r.pid);
  assert.deepEqual(await pids(["-r"]), [1003, 1002, 1001]);
  assert.deepEqual(await pids(["-1"]), [1003]);
  assert.deepEqual(await pids(["-n", "2"]), [1002, 1003]);
  // Matches as coredumpctl's: a number is a PID, a path an EXE.
  assert.deepEqual(await pids(["1002"]), [1002]);
  const { alpha } = await populatedStoreNames(store);
  assert.deepEqual(await pids([alpha]), [1001, 1003]);
  assert.deepEqual(await pids(["--signal", "SIGABRT"]), [1002]);
  assert.deepEqual(await pids(["--signal", "11"]), [1001, 1003]);
  assert.deepEqual(await pids(["--uid", "0"]), [1001, 1002, 1003]);
  assert.deepEqual(await pids(["--uid", "4242"]), []);
  assert.deepEqual(await pids(["--until", "30m"]), [1001, 1002]);

  const json = JSON.parse(
    text((await runMain(["list", "-p", store, "--json", "alpha"])).stdout),
  );
  assert.deepEqual(json.map((r: { pid: number }) => r.pid), [1001, 1003]);
  assert.ok(json[0].ratio > 1);
  assert.equal(json[0].truncated, false);
  const byPid = JSON.parse(
    text(
      (await runMain(["list", "-p", store, "--json", "--pid", "1002"])).stdout,
    ),
  );
  assert.deepEqual(byPid.map((r: { program: string }) => r.program), ["beta"]);
  const recent = JSON.parse(
    text(
      (await runMain(["list", "-p", store, "--json", "--since", "30m"])).stdout,
    ),
  );
  assert.deepEqual(recent.map((r: { pid: number }) => r.pid), [1003]);
  const none = await runMain(["list", "-p", store, "gamma"]);
  assert.equal(text(none.stdout).trim(), "No cores match.");
  // list's own help, not the whole usage.
  const help = text((await runMain(["list", "--help"])).stdout);
  assert.match(help, /^usage: gzcoredump list \[PID\|EXE\|COMM\] /);
  assert.match(help, /^ {2}-1, --newest$/m);
  assert.doesNotMatch(help, /gzcoredump -d -f/);
});

Deno.test("findCore() takes a file name, a base name or a program name (its newest core)", async () => {
  await using dir = await tempDir();
  const { store } = await populatedStore(dir.path);
  const records = await readCatalog(store);
  const first = records[0]!;
  assert.equal(
    (await findCore(store, first.entry.archive!)).entry.base,
    first.entry.base,
  );
  assert.equal(
    (await findCore(store, first.entry.base)).entry.base,
    first.entry.base,
  );
  assert.equal(
    (await findCore(store, first.entry.metadata!)).entry.base,
    first.entry.base,
  );
  assert.equal((await findCore(store, "alpha")).metadata?.pid, 1003);
  assert.equal((await findCore(store, "beta")).metadata?.pid, 1002);
  await assert.rejects(findCore(store, "gamma"), (error: unknown) => {
    assert.ok(error instanceof CoreNotFoundError);
    assert.match(
      error.message,
      /Cannot find a core 'gamma' in '.*store': expected a file name of the store or the name of a program/,
    );
    return true;
  });
});

Deno.test("info ID describes a program's newest stored core", async () => {
  await using dir = await tempDir();
  const { store } = await populatedStore(dir.path);
  const result = await runMain(["info", "alpha", "-p", store]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(text(result.stdout), /^Process:\s+pid 1003 \(alpha\)/m);
  const json = JSON.parse(
    text((await runMain(["info", "beta", "-p", store, "--json"])).stdout),
  );
  assert.equal(json.signal_name, "SIGABRT");
  const missing = await runMain(["info", "gamma", "-p", store]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^gzcoredump: Cannot find a core 'gamma'/);
});

Deno.test("extract writes the raw core, byte for byte and sparse", async () => {
  await using dir = await tempDir();
  const { store, alphaCore } = await populatedStore(dir.path);
  const out = `${dir.path}/extracted`;
  const result = await runMain(["extract", "alpha", "-p", store, "-o", out]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await fileDigest(out), await fileDigest(alphaCore));
  const info = await Deno.stat(out);
  assert.equal(info.mode! & 0o777, 0o600);
  // Every 4 KiB block of zeros in the core is a hole in the file.
  const core = await Deno.readFile(alphaCore);
  let zeroBlocks = 0;
  for (let at = 0; at + 4096 <= core.length; at += 4096) {
    if (core.subarray(at, at + 4096).every((b) => b === 0)) zeroBlocks++;
  }
  assert.ok(zeroBlocks > 0, "the core has zero pages");
  const allocated = info.blocks! * 512;
  assert.ok(
    allocated <= core.length - zeroBlocks * 4096 + 8192,
    `allocated ${allocated} of ${info.size}, ${zeroBlocks} zero blocks`,
  );
  const again = await runMain(["extract", "alpha", "-p", store, "-o", out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /a file of that name exists.*use --force/);
});

Deno.test("debug runs the debugger on the program and the core, then removes the core", async () => {
  await using dir = await tempDir();
  const { store } = await populatedStore(dir.path);
  const before = (await listAll("/tmp")).filter((n) =>
    n.startsWith("gzcoredump-debug-")
  );
  const result = await runMain([
    "debug",
    "alpha",
    "-p",
    store,
    "--debugger",
    "gdb -batch -ex bt",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const out = text(result.stdout);
  assert.match(out, /Core was generated by `.*alpha'/);
  assert.match(out, /Program terminated with signal SIGSEGV/);
  assert.match(out, /#0 .* main \(.*\) at .*crash\.c:\d+/);
  const after = (await listAll("/tmp")).filter((n) =>
    n.startsWith("gzcoredump-debug-")
  );
  assert.deepEqual(after, before, "the unpacked core is gone");
  const bad = await runMain([
    "debug",
    "alpha",
    "-p",
    store,
    "--debugger",
    "/nonexistent/gdb",
  ]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /Cannot start debugger '\/nonexistent\/gdb': no such program/,
  );
});

Deno.test("a crash kept as metadata only is listed, described, and not extracted", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const result = await runMain(
    ["-c", "-p", store, "-r", "0", "-a", "limited"],
    {
      stdin: new TextEncoder().encode("core"),
    },
  );
  assert.equal(result.code, 0);
  const list = text((await runMain(["list", "-p", store])).stdout);
  assert.match(
    list,
    /metadata only \(RLIMIT_CORE 0\)\s+limited\s+.*\sCore_\d{8}_\d{6}_limited\.json$/m,
  );
  const info = text((await runMain(["info", "limited", "-p", store])).stdout);
  assert.match(
    info,
    /^Not stored:\s+RLIMIT_CORE of the crashed process is 0 bytes/m,
  );
  const extract = await runMain([
    "extract",
    "limited",
    "-p",
    store,
    "-o",
    `${dir.path}/x`,
  ]);
  assert.equal(extract.code, 1);
  assert.match(
    extract.stderr,
    /Cannot extract 'Core_\d{8}_\d{6}_limited': only its metadata was kept \(RLIMIT_CORE/,
  );
  assert.deepEqual(await listDir(dir.path), ["store"]);
});

/** The executables the populated store's cores name. */
async function populatedStoreNames(store: string): Promise<{ alpha: string }> {
  for await (const entry of Deno.readDir(store)) {
    if (!entry.name.endsWith("_alpha.json")) continue;
    const record = JSON.parse(
      await Deno.readTextFile(`${store}/${entry.name}`),
    );
    return { alpha: record.exe };
  }
  throw new Error("no alpha record");
}
