/**
 * Where the traces show: the sidecar of a capture, `info` (a raw core, a
 * stored one, a qemu core with `--exe`), `list`, and `debug`, which checks
 * that the program is the one that crashed.
 */

import assert from "node:assert/strict";
import { check, kernelCore, runMain, tempDir, TESTDATA } from "../_helpers.ts";
import { archFixtures } from "../_fixtures.ts";
import { storeCore } from "../_store.ts";
import type { ThreadEntry } from "../../lib/store/mod.ts";
import { unwindFixtures } from "../_unwind_fixtures.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A thread of the sidecar's `backtrace`. */
type SidecarThread = ThreadEntry;

/** `info ARGS --json`, which must succeed: its metadata. */
async function infoJson(args: string[]) {
  const result = await runMain(["info", ...args, "--json"]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(text(result.stdout));
}

/** `debug -p STORE prog --debugger true`, and more arguments. */
function debugStored(store: string, ...more: string[]) {
  return runMain(["debug", "-p", store, "prog", "--debugger", "true", ...more]);
}

Deno.test("capture: the sidecar has every thread's trace, crashing thread first; list shows its top function", async () => {
  await using dir = await tempDir();
  const fixture = (await unwindFixtures()).find((f) =>
    f.name === "x86_64-O2-threads"
  )!;
  const store = `${dir.path}/store`;
  const { sidecar: name, metadata } = await storeCore(
    store,
    fixture.core,
    "threads",
  );
  const threads = metadata.backtrace as SidecarThread[];
  assert.equal(metadata.threads, 4);
  assert.equal(threads.length, 4);
  assert.equal(metadata.crash_thread, threads[0]!.tid);
  assert.deepEqual(threads.map((t) => t.crashed), [true, false, false, false]);
  assert.equal(metadata.backtrace_error, null);
  const top = threads[0]!.frames[0]!;
  assert.equal(top.function, "crash_level3");
  assert.equal(top.trust, "context");
  assert.match(top.pc, /^0x[0-9a-f]+$/);
  assert.equal(top.module, fixture.program);
  assert.match(top.build_id!, /^[0-9a-f]{40}$/);
  assert.equal(BigInt(top.pc) - BigInt(top.offset!) > 0n, true);
  for (const thread of threads.slice(1)) {
    assert.ok(
      thread.frames.some((f) => f.function === "park_level2"),
      JSON.stringify(thread.frames.map((f) => f.function)),
    );
  }
  const list = text((await runMain(["list", "-p", store])).stdout);
  assert.match(list, /\sstored\s+unwind\s+\S+ \S+\s+\S+x\s+crash_level3\s/);
  const info = text(
    (await runMain(["info", "-p", store, name.replace(/\.json$/, ".gz")]))
      .stdout,
  );
  assert.match(
    info,
    /Stack trace of thread \d+, which crashed:\n {2}#0 {2}0x[0-9a-f]{16} crash_level3\+0x[0-9a-f]+ \(unwind \+ 0x[0-9a-f]+\) \[context\]\n {2}#1 {2}0x[0-9a-f]{16} crash_level2\+/,
  );
});

Deno.test("info: a qemu core with --exe is traced from the program; another architecture's core says so", async () => {
  const fixture = (await unwindFixtures()).find((f) =>
    f.name === "aarch64-O2-static-segv"
  )!;
  const metadata = await infoJson([fixture.core, "--exe", fixture.program]);
  const frames = (metadata.backtrace as SidecarThread[])[0]!.frames;
  assert.deepEqual(
    frames.slice(0, 4).map((f) => f.function),
    ["crash_level3", "crash_level2", "crash_level1", "main"],
  );
  // --symbolize on this host: the program's own DWARF gives file and line.
  const named = (await infoJson([
    fixture.core,
    "--exe",
    fixture.program,
    "--symbolize",
  ])).backtrace[0].frames as (SidecarThread["frames"][number] & {
    file?: string;
    line?: number;
  })[];
  assert.equal(named[0]!.function, "crash_level3");
  assert.match(`${named[0]!.file}:${named[0]!.line}`, /unwind\.c:\d+$/);
  // Without --exe the notes name no file: frame 0 from the registers only.
  const bare = await infoJson([fixture.core]);
  const first = (bare.backtrace as SidecarThread[])[0]!.frames[0]!;
  assert.equal(first.pc, frames[0]!.pc);
  assert.equal(first.function, null);
});

Deno.test("info: cores of armhf, mips and powerpc are traced, frame 0 the PC gdb-multiarch reads", async () => {
  for (const arch of ["armhf", "mips", "powerpc"]) {
    const fixture = (await archFixtures()).find((f) => f.arch === arch)!;
    const metadata = await infoJson([
      fixture.core,
      "--exe",
      fixture.program,
    ]);
    assert.equal(metadata.backtrace_error, null, arch);
    const [thread] = metadata.backtrace as SidecarThread[];
    // The crash program dies in main.
    assert.equal(thread!.frames[0]!.function, "main", arch);
    assert.equal(thread!.frames[0]!.trust, "context");
    const gdb = await check("gdb-multiarch", [
      "-batch",
      "-nx",
      "-ex",
      "p/x $pc",
      fixture.program,
      fixture.core,
    ]);
    assert.match(gdb, new RegExp(`= ${thread!.frames[0]!.pc}\\b`), arch);
  }
});

Deno.test("debug: refuses a program whose build-id is not the core's, and --force runs the debugger with a warning", async () => {
  await using dir = await tempDir();
  const program = `${dir.path}/prog`;
  await check("gcc", ["-g", "-O0", "-o", program, `${TESTDATA}/crash.c`]);
  const core = await kernelCore(program, ["tiny"], dir.path);
  const store = `${dir.path}/store`;
  await storeCore(store, core, "prog", ["-E", program.replaceAll("/", "!")]);
  // The same program works.
  const same = await debugStored(store);
  assert.equal(same.code, 0, same.stderr);
  // Rebuilt from other source: another build-id.
  await Deno.writeTextFile(`${dir.path}/extra.c`, "int rebuilt_marker = 1;\n");
  await check("gcc", [
    "-g",
    "-O0",
    "-o",
    program,
    `${TESTDATA}/crash.c`,
    `${dir.path}/extra.c`,
  ]);
  const refused = await debugStored(store);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /Cannot debug Core_\S+\.gz: the program '.*\/prog' has build-id [0-9a-f]+, the core recorded [0-9a-f]+: it is not the program that crashed; expected the same build \(--force runs the debugger anyway\)/,
  );
  assert.equal(refused.stderr.trim().split("\n").length, 1);
  const forced = await debugStored(store, "--force");
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(
    forced.stderr,
    /^warning: the program .* is not the program that crashed/m,
  );
});

Deno.test("signatures: the same bug under ASLR shares one, three bugs give three, list --group counts them", async () => {
  await using dir = await tempDir();
  const program = `${dir.path}/prog`;
  await check("gcc", [
    "-g",
    "-O2",
    "-pthread",
    "-o",
    program,
    `${TESTDATA}/unwind/unwind.c`,
  ]);
  const store = `${dir.path}/store`;
  const crash = async (mode: string, run: number, extra: string[] = []) => {
    const work = `${dir.path}/${mode}-${run}`;
    await Deno.mkdir(work);
    const core = await kernelCore(program, [mode], work);
    const stored = await storeCore(store, core, `${mode}${run}`, [
      "-t",
      String(1_800_000_000 + run),
      ...extra,
    ]);
    return stored.metadata;
  };
  const first = await crash("segv", 1);
  const second = await crash("segv", 2);
  // Loaded elsewhere (ASLR), the same frames by module and function.
  assert.notEqual(
    first.backtrace[0].frames[0].pc,
    second.backtrace[0].frames[0].pc,
  );
  assert.equal(first.signature.id, second.signature.id);
  assert.deepEqual(first.signature.frames, [
    "prog!crash_level3",
    "prog!crash_level2",
    "prog!crash_level1",
  ]);
  const abort = await crash("abort", 3);
  // raise and abort only report the crash: the bug is in abort_level2.
  assert.deepEqual(abort.signature.frames.slice(0, 2), [
    "prog!abort_level2",
    "prog!abort_level1",
  ]);
  const handler = await crash("handler", 4);
  assert.equal(handler.signature.frames[0], "prog!handler_crash");
  const ids = new Set([first, abort, handler].map((m) => m.signature.id));
  assert.equal(ids.size, 3);
  // More functions to skip: another signature for the same crash.
  const skipped = await crash("segv", 5, ["--signature-skip", "crash_level3"]);
  assert.equal(skipped.signature.frames[0], "prog!crash_level2");

  const groups = JSON.parse(
    text((await runMain(["list", "-p", store, "--group", "--json"])).stdout),
  );
  assert.deepEqual(
    groups.map((g: { count: number; function: string }) => [
      g.count,
      g.function,
    ]),
    [
      [2, "crash_level3"],
      [1, "abort_level2"],
      [1, "handler_crash"],
      [1, "crash_level2"],
    ],
  );
  const table = text((await runMain(["list", "-p", store, "--group"])).stdout);
  assert.match(
    table,
    /^COUNT\s+FIRST\s+LAST\s+PROGRAM\s+FUNCTION\s+SIGNATURE\s+LAST FILE$/m,
  );
  assert.match(
    table,
    new RegExp(
      `^2\\s+.*\\s${first.signature.id}\\s+Core_\\S+_segv2\\.gz$`,
      "m",
    ),
  );
  const only = text(
    (await runMain([
      "list",
      "-p",
      store,
      "--signature",
      first.signature.id.slice(0, 8),
    ]))
      .stdout,
  );
  assert.equal(only.trim().split("\n").length, 3, only);
  const bad = await runMain(["list", "-p", store, "--signature", "xyz"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected a signature id, up to 16 hex digits/);
});
