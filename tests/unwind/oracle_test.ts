/**
 * The unwinder's test oracle is sane (issue #12): every fixture's core is
 * there, and gdb's stack traces of it show the frames the program was built
 * to have, before any unwinder of ours exists to be compared with them.
 */

import assert from "node:assert/strict";
import {
  type GdbFrame,
  gdbFrames,
  type GdbThread,
  type UnwindFixture,
  unwindFixtures,
} from "../_unwind_fixtures.ts";

/** The fixtures that must be there (the dynamic aarch64 ones may not). */
const REQUIRED = [
  ...["x86_64-O0", "x86_64-O2", "x86_64-O2-static", "aarch64-O2-static"]
    .flatMap((variant) =>
      ["segv", "abort", "handler", "threads"].map((m) => `${variant}-${m}`)
    ),
  "aarch64-O2-static-pac-segv",
  "aarch64-O2-static-pac-handler",
  "x86_64-O2-stripped-segv",
  "x86_64-O2-throw",
  "x86_64-O2-wait",
];

/** The frames of thread 1 that the program itself has, newest first. */
const OWN_FRAMES: Record<string, string[]> = {
  segv: ["crash_level3", "crash_level2", "crash_level1", "main"],
  threads: ["crash_level3", "crash_level2", "crash_level1", "main"],
  abort: ["abort", "abort_level2", "abort_level1", "main"],
  handler: [
    "handler_crash",
    "on_signal",
    "handler_level2",
    "handler_level1",
    "main",
  ],
  throw: ["abort", "throw_level_b", "throw_level_a", "main"],
  wait: ["wait_level2", "wait_level1", "main"],
};

/** Asserts that `names` appear in `frames` in this order, maybe not only. */
function assertInOrder(frames: GdbFrame[], names: string[], what: string) {
  const functions = frames.map((frame) => frame.function);
  let at = 0;
  for (const name of names) {
    const found = functions.indexOf(name, at);
    assert(found >= 0, `${what}: no ${name} after frame ${at} in ${functions}`);
    at = found + 1;
  }
}

function checkFixture(fixture: UnwindFixture, threads: GdbThread[]): void {
  const what = fixture.name;
  assert.deepStrictEqual(
    fixture.coreBy === "qemu",
    fixture.arch !== "x86_64" && fixture.arch !== "i386",
    `${what}: coreBy`,
  );
  assert.deepStrictEqual(
    threads.map((thread) => thread.num),
    threads.map((_, i) => i + 1),
    `${what}: thread numbers`,
  );
  const first = threads[0];
  assert(first !== undefined, `${what}: gdb sees no thread`);
  assert(first.tid > 0, `${what}: thread 1 has no LWP`);
  for (const thread of threads) {
    // gdb ends a powerpc stack with the back chain's 0 past _start.
    if (fixture.arch === "powerpc" && thread.frames.at(-1)?.pc === 0n) {
      thread.frames.pop();
    }
    assert(thread.frames.length > 0, `${what}: thread ${thread.num} empty`);
    for (const frame of thread.frames) assert(frame.pc > 0n, `${what}: pc 0`);
  }
  const own = OWN_FRAMES[fixture.mode];
  assert(own !== undefined, `${what}: unknown mode ${fixture.mode}`);
  assert.deepStrictEqual(
    first.frames[0]?.function,
    fixture.mode === "segv" || fixture.mode === "threads"
      ? "crash_level3"
      : fixture.mode === "handler"
      ? "handler_crash"
      : first.frames[0]?.function,
    `${what}: the crashing frame`,
  );
  assertInOrder(first.frames, own, what);
  // gdb walked the whole stack: to the program's entry point.
  // (mips names it __start; on powerpc gdb ends in __libc_start_main.)
  assert.match(
    first.frames.at(-1)?.function ?? "",
    fixture.arch === "powerpc" ? /^__libc_start_main/ : /^_?_start$/,
    `${what}: outermost`,
  );
  if (fixture.mode === "handler") {
    const functions = first.frames.map((frame) => frame.function);
    const tramp = first.frames.findIndex((f) => f.type === "sigtramp");
    assert(
      tramp > functions.indexOf("on_signal") &&
        tramp < functions.indexOf("handler_level2"),
      `${what}: no signal frame between the handler and its caller`,
    );
  }
  if (fixture.mode === "threads") {
    assert.deepStrictEqual(threads.length, 4, `${what}: threads`);
    assert.deepStrictEqual(
      new Set(threads.map((t) => t.tid)).size,
      4,
      `${what}: LWPs`,
    );
    for (const parked of threads.slice(1)) {
      assertInOrder(
        parked.frames,
        ["park_level2", "park_level1", "thread_fn"],
        `${what} thread ${parked.num}`,
      );
    }
  } else {
    assert.deepStrictEqual(threads.length, 1, `${what}: threads`);
  }
}

Deno.test("unwind oracle: gdb's stack traces of the fixtures", async (t) => {
  const fixtures = await unwindFixtures();
  const names = fixtures.map((fixture) => fixture.name);
  for (const name of REQUIRED) {
    assert(names.includes(name), `no fixture ${name}`);
  }
  assert.deepStrictEqual(new Set(names).size, names.length, "fixture names");
  for (const fixture of fixtures) {
    await t.step(fixture.name, async () => {
      checkFixture(fixture, await gdbFrames(fixture));
    });
  }
});

Deno.test("unwind oracle: the stripped program ran, the symbols agree", async () => {
  const fixture = (await unwindFixtures()).find((f) => f.stripped);
  assert(fixture?.stripped !== undefined);
  const symbols = new TextDecoder().decode(
    (await new Deno.Command("nm", { args: [fixture.stripped] }).output())
      .stderr,
  );
  assert(/no symbols/.test(symbols), "the stripped copy has symbols");
  const threads = await gdbFrames(fixture);
  assert.deepStrictEqual(threads[0]?.frames[0]?.function, "crash_level3");
});

/** x29, x30, sp and pc of an aarch64 core's first NT_PRSTATUS. */
async function crashRegisters(core: string): Promise<bigint[]> {
  const bytes = await Deno.readFile(core);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(32, true));
  for (let i = 0; i < view.getUint16(56, true); i++) {
    const at = phoff + i * view.getUint16(54, true);
    if (view.getUint32(at, true) !== 4) continue; // PT_NOTE
    const note = Number(view.getBigUint64(at + 8, true));
    assert.equal(view.getUint32(note + 8, true), 1, "NT_PRSTATUS first");
    const regs = note + 12 + 8 + 112; // "CORE\0" padded, then pr_reg
    return [29, 30, 31, 32].map((r) => view.getBigUint64(regs + r * 8, true));
  }
  throw new Error(`${core}: no PT_NOTE`);
}

Deno.test("unwind oracle: a signed core crashed like its oracle core", async () => {
  // gdb cannot strip qemu's signed return addresses (no NT_ARM_PAC_MASK in
  // the core): the oracle core is the same run without them. Both crashed
  // with the same frame pointer, link register, stack pointer and pc.
  for (const fixture of await unwindFixtures()) {
    if (!fixture.flags.includes("-mbranch-protection=standard")) continue;
    assert(fixture.oracleCore !== undefined, `${fixture.name}: no oracle`);
    assert.deepStrictEqual(
      await crashRegisters(fixture.core),
      await crashRegisters(fixture.oracleCore),
      fixture.name,
    );
    const { oracleCore: _, ...signed } = fixture;
    const [own] = await gdbFrames(signed);
    const [oracle] = await gdbFrames(fixture);
    assert.equal(own?.frames[0]?.pc, oracle?.frames[0]?.pc, fixture.name);
  }
});
