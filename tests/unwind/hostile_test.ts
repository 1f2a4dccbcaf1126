/**
 * What a review found, each kept fixed: a shared section budget, a module
 * with thousands of note sections, symbol aliases and gaps, a call through
 * a NULL pointer, a short pointer-authentication note, a damaged
 * `.eh_frame_hdr`.
 */

import assert from "node:assert/strict";
import {
  decodeCoreNotes,
  EM_AARCH64,
  ET_CORE,
  findSection,
  NT_ARM_PAC_MASK,
  NT_PRSTATUS,
  parseElfHeader,
  readBuildId,
  readElf,
  readElfAt,
} from "../../lib/elf/mod.ts";
import { CallFrameInfo, loadModuleFile } from "../../lib/unwind/mod.ts";
import { check, kernelCore, tempDir } from "../_helpers.ts";
import { gdbFrames, type UnwindFixture } from "../_unwind_fixtures.ts";
import { CoreInspectorStream } from "../../lib/elf/mod.ts";
import { backtraceCore } from "../../lib/unwind/mod.ts";

const LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6";

Deno.test("hostile: one budget is shared by every module of a trace", async () => {
  const budget = { bytes: 400 << 10 };
  using first = await Deno.open(LIBC);
  const one = await loadModuleFile(first, { path: LIBC, start: 0n, budget });
  assert.ok(one.cfi !== undefined, one.error);
  const left = budget.bytes;
  assert.ok(left < 400 << 10, `${left} bytes left`);
  using second = await Deno.open(LIBC);
  const two = await loadModuleFile(second, { path: LIBC, start: 0n, budget });
  assert.equal(two.cfi, undefined);
  assert.match(two.error!, /left of the trace's budget/);
  assert.ok(budget.bytes >= 0 && budget.bytes <= left);
});

Deno.test("hostile: a file of 2000 note sections costs a few of them, not all", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/notes.so`;
  // 2000 SHT_NOTE sections over one 64 KiB area of empty notes, each at
  // another offset: every one a different area to read.
  await check("python3", [
    "-c",
    `
import struct
n = 2000; AREA = 64 << 10; area_off = 0x1000
shoff = area_off + AREA + n * 12 + 64
area = (struct.pack("<III", 0, 0, 3) * ((AREA + n * 12) // 12 + 6))[:AREA + n * 12 + 64]
shstr = b"\\0.shstrtab\\0.note\\0"
ehdr = b"\\x7fELF" + bytes([2, 1, 1, 0]) + b"\\0" * 8
ehdr += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, n + 2, 1)
data = bytearray(ehdr.ljust(0x800, b"\\0")); data[0x800:0x800 + len(shstr)] = shstr
data = bytes(data).ljust(area_off, b"\\0") + area
sh = b"\\0" * 64 + struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, 0x800, len(shstr), 0, 0, 1, 0)
for i in range(n):
    sh += struct.pack("<IIQQQQIIQQ", 11, 7, 0, 0, area_off + (n - i) * 12, AREA, 0, 0, 4, 0)
open("${path}", "wb").write(data + sh)
`,
  ]);
  const before = Deno.memoryUsage().rss;
  using file = await Deno.open(path);
  assert.equal(await readBuildId(file, await readElf(file)), undefined);
  // Before the bound: 1.6 GiB for 1500 sections.
  const grown = Deno.memoryUsage().rss - before;
  assert.ok(grown < 200 << 20, `${grown >> 20} MiB`);
});

Deno.test("hostile: aliases name one function, and padding after a sized one names none", async () => {
  await using dir = await tempDir();
  const source = `${dir.path}/names.c`;
  await Deno.writeTextFile(
    source,
    `int real_impl(int x) { return x * 3 + 1; }
int alias_a(int) __attribute__((alias("real_impl")));
int __attribute__((weak, alias("real_impl"))) weak_alias(int);
__asm__(".text\\n.globl asmlabel\\n.type asmlabel,@function\\nasmlabel:\\n nop\\n ret\\n");
int main(int c, char **v) { (void)v; return alias_a(c); }
`,
  );
  const program = `${dir.path}/names`;
  await check("gcc", ["-O2", "-o", program, source]);
  using file = await Deno.open(program);
  const image = await loadModuleFile(file, { path: program, start: 0n });
  const symbols = image.symbols!;
  const nm = await check("nm", ["-S", "--defined-only", program]);
  const entry = (name: string) => {
    const match = new RegExp(`^([0-9a-f]+) ([0-9a-f]+ )?[Tt] ${name}$`, "m")
      .exec(nm)!;
    return {
      address: BigInt(`0x${match[1]}`),
      size: match[2] ? BigInt(`0x${match[2].trim()}`) : 0n,
    };
  };
  const real = entry("real_impl");
  // Three names at one address: a global one, not the weak alias.
  const named = symbols.lookup(real.address);
  assert.ok(
    named?.name === "real_impl" || named?.name === "alias_a",
    named?.name,
  );
  assert.equal(named.offset, 0n);
  // Past the end of a sized function, before the next: no name (gcc pads
  // functions to 16 bytes).
  const main = entry("main");
  if (main.size % 16n !== 0n) {
    assert.equal(symbols.lookup(main.address + main.size), undefined);
  }
});

Deno.test("hostile: a call through a NULL pointer keeps the caller, as gdb does", async () => {
  await using dir = await tempDir();
  const source = `${dir.path}/nc.c`;
  await Deno.writeTextFile(
    source,
    `#include <stddef.h>
void (*volatile fp)(void) = NULL;
__attribute__((noinline)) void f(void) { fp(); __asm__ volatile(""); }
__attribute__((noinline)) void g(void) { f(); __asm__ volatile(""); }
int main(void) { g(); return 0; }
`,
  );
  const program = `${dir.path}/nc`;
  await check("gcc", ["-g", "-O0", "-o", program, source]);
  const core = await kernelCore(program, [], dir.path);
  const fixture: UnwindFixture = {
    name: "x86_64-nullcall",
    arch: "x86_64",
    program,
    core,
    coreBy: "kernel",
    mode: "nullcall",
    flags: ["-O0"],
  };
  const inspector = new CoreInspectorStream();
  {
    using input = await Deno.open(core);
    for await (const chunk of input.readable) inspector.inspect(chunk);
  }
  const trace = await backtraceCore(inspector.report);
  const ours = trace.threads[0]!.frames;
  const gdb = (await gdbFrames(fixture))[0]!.frames.filter((f) =>
    !f.inline && f.type !== "tailcall"
  );
  const upTo = gdb.findIndex((f) => f.function === "main") + 1;
  assert.ok(upTo >= 4, gdb.map((f) => f.function).join(" "));
  assert.deepEqual(
    ours.slice(0, upTo).map((f) => f.pc),
    gdb.slice(0, upTo).map((f) => f.pc),
  );
  assert.deepEqual(ours.slice(0, 4).map((f) => f.function), [
    undefined,
    "f",
    "g",
    "main",
  ]);
  assert.equal(ours[1]!.trust, "scan");
});

Deno.test("hostile: a short NT_ARM_PAC_MASK is skipped, the other notes kept", () => {
  const bytes = new Uint8Array(64);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  view.setUint16(16, ET_CORE, true);
  view.setUint16(18, EM_AARCH64, true);
  view.setUint32(20, 1, true);
  const header = parseElfHeader(bytes);
  const status = new Uint8Array(392);
  new DataView(status.buffer).setUint32(32, 77, true);
  const notes = decodeCoreNotes([
    {
      name: "LINUX",
      type: NT_ARM_PAC_MASK,
      desc: new Uint8Array(8),
      offset: 0,
    },
    { name: "CORE", type: NT_PRSTATUS, desc: status, offset: 20 },
  ], header);
  assert.equal(notes.pacMask, undefined);
  assert.equal(notes.threads[0]!.tid, 77);
});

Deno.test("hostile: a damaged .eh_frame_hdr leaves the rows to a scan of .eh_frame", async () => {
  using file = await Deno.open(LIBC);
  const elf = await readElf(file);
  const read = async (name: string) => {
    const s = findSection(elf, name)!;
    return { bytes: await readElfAt(file, s.offset, s.size), address: s.addr };
  };
  const ehFrame = await read(".eh_frame");
  const header = await read(".eh_frame_hdr");
  const options = { is64: true, littleEndian: true, where: LIBC };
  const text = findSection(elf, ".text")!;
  const pc = text.addr + 0x100n;
  const good = new CallFrameInfo({ ehFrame, ehFrameHdr: header }, options)
    .row(pc);
  assert.ok(good);
  const damaged = header.bytes.slice();
  damaged[0] = 2; // version 2
  const row = new CallFrameInfo({
    ehFrame,
    ehFrameHdr: { bytes: damaged, address: header.address },
  }, options).row(pc);
  assert.deepEqual(row, good);
});
