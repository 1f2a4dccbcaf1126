/**
 * Stack traces of real cores against gdb's: x86_64 kernel cores (or gdb's,
 * where core_pattern pipes cores away) and aarch64 qemu-user cores of
 * programs at -O0 and -O2 -fomit-frame-pointer, static and dynamic, crashing
 * in main's callees, inside libc (abort), in a signal handler, with threads
 * parked in pause(), stripped, and a C++ exception nobody catches.
 */

import assert from "node:assert/strict";
import { CoreInspectorStream } from "../../lib/elf/mod.ts";
import {
  type Backtrace,
  backtraceCore,
  type ThreadTrace,
} from "../../lib/unwind/mod.ts";
import {
  gdbFrames,
  type GdbThread,
  type UnwindFixture,
  unwindFixtures,
} from "../_unwind_fixtures.ts";
import { check, kernelCore, runTool, tempDir, TESTDATA } from "../_helpers.ts";

/** Reads a core as capture does: streamed through the inspector. */
async function traceOf(
  fixture: UnwindFixture,
  core = fixture.core,
): Promise<Backtrace> {
  const inspector = new CoreInspectorStream();
  {
    using file = await Deno.open(core);
    for await (const chunk of file.readable) inspector.inspect(chunk);
  }
  {
    using again = await Deno.open(core);
    await inspector.completeFrom(again);
  }
  return await backtraceCore(
    inspector.report,
    fixture.coreBy === "qemu" ? { exe: fixture.program } : {},
  );
}

/** gdb's frames that are on the stack: no inline or tail-call frames. */
function realFrames(thread: GdbThread) {
  return thread.frames.filter((f) => !f.inline && f.type !== "tailcall");
}

/** The frames gdb and we must agree on: down to main or the thread's start. */
function comparedFrames(thread: GdbThread): number {
  const frames = realFrames(thread);
  const end = frames.findIndex((f) =>
    f.function === "main" || f.function === "thread_fn" ||
    f.function === "start_thread"
  );
  return end === -1 ? frames.length : end + 1;
}

/** Each module's symbol addresses by name (nm), for aliases: `pause` is `__libc_pause`. */
const symbolTables = new Map<string, Promise<Map<string, string>>>();

function symbolsOf(path: string): Promise<Map<string, string>> {
  let table = symbolTables.get(path);
  if (table === undefined) {
    table = (async () => {
      const names = new Map<string, string>();
      for (const flags of [["-D"], []]) {
        const result = await runTool("nm", ["--defined-only", ...flags, path]);
        for (
          const line of new TextDecoder().decode(result.stdout).split("\n")
        ) {
          const [address, , name] = line.split(" ");
          if (address && name) names.set(name.replace(/@.*$/, ""), address);
        }
      }
      return names;
    })();
    symbolTables.set(path, table);
  }
  return table;
}

/**
 * Our name and gdb's agree: the same, gcc's `.cold`/`.part.N` clone of it,
 * or an alias (another symbol at the same address of the module).
 */
async function sameName(
  ours: string,
  gdb: string,
  module: string | undefined,
): Promise<boolean> {
  if (ours === gdb || ours.startsWith(`${gdb}.`)) return true;
  if (module === undefined) return false;
  const symbols = await symbolsOf(module);
  const address = symbols.get(ours);
  return address !== undefined && symbols.get(gdb) === address;
}

function describeFrames(ours: ThreadTrace, gdb: GdbThread): string {
  const left = ours.frames.map((f) =>
    `0x${f.pc.toString(16)} ${f.function ?? "?"} [${f.trust}]`
  );
  const right = realFrames(gdb).map((f) =>
    `0x${f.pc.toString(16)} ${f.function ?? "?"}`
  );
  return `ours:\n  ${left.join("\n  ")}\n  (${ours.error ?? "end"})\ngdb:\n  ${
    right.join("\n  ")
  }`;
}

async function checkAgainstGdb(
  fixture: UnwindFixture,
  trace: Backtrace,
): Promise<void> {
  const gdb = await gdbFrames(fixture);
  assert.equal(trace.error, undefined, `${fixture.name}: ${trace.error}`);
  assert.equal(
    trace.threads.length,
    gdb.length,
    `${fixture.name}: threads`,
  );
  assert.equal(trace.threads[0]!.crashed, true);
  for (const [index, thread] of gdb.entries()) {
    // gdb cannot strip signed return addresses without NT_ARM_PAC_MASK
    // (qemu writes none): it reads the same run made without pointer
    // authentication, another process, whose threads are matched by order.
    const ours = fixture.oracleCore === undefined
      ? trace.threads.find((t) => t.tid === thread.tid)
      : trace.threads[index];
    assert.ok(ours, `${fixture.name}: thread ${thread.tid} missing`);
    const expected = realFrames(thread).slice(0, comparedFrames(thread));
    assert.ok(expected.length >= 2, `${fixture.name}: gdb gave one frame`);
    const context = `${fixture.name}, thread ${thread.tid}\n${
      describeFrames(ours, thread)
    }`;
    assert.deepEqual(
      ours.frames.slice(0, expected.length).map((f) => f.pc),
      expected.map((f) => f.pc),
      context,
    );
    for (const [i, frame] of expected.entries()) {
      const { function: name, module } = ours.frames[i]!;
      // Names are not demangled yet: gdb's `std::terminate()` is our
      // `_ZSt9terminatev`.
      if (
        frame.function !== null && name !== undefined && !name.startsWith("_Z")
      ) {
        assert.ok(
          await sameName(name, frame.function, module),
          `${context}\nframe ${i}: ${name}, gdb ${frame.function}`,
        );
      }
    }
    // Each frame says how it was found; frame 0 from the core's registers.
    assert.equal(ours.frames[0]!.trust, "context");
  }
}

// qemu-user's cores have no NT_FILE note: without it, the shared libraries
// of a dynamic program are not known (gdb finds them through the dynamic
// linker's list in memory and a sysroot). Those cores are traced as far as
// the program goes, below.
const fixtures = await unwindFixtures();
const compared = fixtures.filter((f) =>
  !(f.coreBy === "qemu" && f.sysroot !== undefined)
);

for (const fixture of compared) {
  Deno.test(`backtrace: ${fixture.name} (${fixture.coreBy} core) gives gdb's frames`, async () => {
    const trace = await traceOf(fixture);
    await checkAgainstGdb(fixture, trace);
    const crashed = trace.threads[0]!;
    const names = crashed.frames.map((f) => f.function);
    if (fixture.stripped !== undefined) {
      // What ran has no symbol table: its frames have module and offset,
      // no names (gdb named them from the unstripped copy).
      const own = crashed.frames.filter((f) => f.module === fixture.stripped);
      assert.ok(
        own.length >= 4,
        JSON.stringify(crashed.frames.map((f) => f.module)),
      );
      for (const frame of own) {
        assert.equal(frame.function, undefined);
        assert.ok(frame.offset !== undefined && frame.offset < 0x10000n);
      }
    } else if (fixture.mode === "segv" || fixture.mode === "threads") {
      assert.ok(names.includes("crash_level3"), names.join(" "));
    }
    if (fixture.arch === "mips" || fixture.arch === "armhf") {
      // glibc's abort has no unwind tables there: its caller is read from
      // its prologue, as gdb reads it, not guessed from the stack (whose
      // stale words differ from run to run and machine to machine).
      const trusts = crashed.frames.slice(0, names.indexOf("main") + 1).map(
        (f) => f.trust,
      );
      assert.ok(!trusts.includes("scan"), trusts.join(" "));
      if (fixture.mode === "abort") {
        assert.ok(trusts.includes("prologue"), trusts.join(" "));
      }
    }
    // The walk ends in the entry point's function, as gdb's does, not in
    // stale words of the stack above it.
    const entry = names.findIndex((n) => n === "_start" || n === "__start");
    if (fixture.sysroot === undefined && entry !== -1) {
      assert.equal(entry, names.length - 1, names.join(" "));
      assert.equal(crashed.error, undefined, crashed.error);
    }
    if (fixture.mode === "handler") {
      // Through the signal frame: the handler, then what it interrupted.
      for (const name of ["handler_crash", "on_signal", "handler_level2"]) {
        assert.ok(names.includes(name), `${name} in ${names.join(" ")}`);
      }
    }
  });
}

Deno.test("backtrace: a dynamic aarch64 program's qemu core is traced through the program's own frames", async () => {
  const dynamic = fixtures.filter((f) =>
    f.coreBy === "qemu" && f.sysroot !== undefined && f.mode === "segv"
  );
  for (const fixture of dynamic) {
    const trace = await traceOf(fixture);
    const names = trace.threads[0]!.frames.map((f) => f.function);
    assert.deepEqual(
      names.slice(0, 4),
      ["crash_level3", "crash_level2", "crash_level1", "main"],
      fixture.name,
    );
  }
});

Deno.test("backtrace: a program with .debug_frame only (no unwind tables) gives gdb's frames", async () => {
  await using dir = await tempDir();
  const program = `${dir.path}/debug_frame`;
  const flags = [
    "-g",
    "-O2",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-pthread",
  ];
  await check("gcc", [...flags, "-o", program, `${TESTDATA}/unwind/unwind.c`]);
  const core = await kernelCore(program, ["segv"], dir.path);
  const fixture: UnwindFixture = {
    name: "x86_64-O2-debug-frame-segv",
    arch: "x86_64",
    program,
    core,
    coreBy: "kernel",
    mode: "segv",
    flags,
  };
  const trace = await traceOf(fixture);
  await checkAgainstGdb(fixture, trace);
  assert.deepEqual(
    trace.threads[0]!.frames.slice(0, 4).map((f) => [f.function, f.trust]),
    [
      ["crash_level3", "context"],
      ["crash_level2", "cfi"],
      ["crash_level1", "cfi"],
      ["main", "cfi"],
    ],
  );
});
