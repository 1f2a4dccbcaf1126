/**
 * The stack scan's test of a return address, that the instruction before
 * it is a call, checked at every instruction boundary of code that each
 * architecture's assembler wrote, against objdump's reading of it: true
 * exactly after a call (MIPS: after a call's delay slot), on x86_64, i386,
 * aarch64, ARM and Thumb, MIPS and PowerPC. And a real crash whose stack
 * holds pointers into code above the frame: the scan skips them for the
 * return address the kernel's core holds.
 */

import assert from "node:assert/strict";
import {
  EM_386,
  EM_AARCH64,
  EM_ARM,
  EM_MIPS,
  EM_PPC,
  EM_X86_64,
} from "../../lib/elf/mod.ts";
import { mayReturnTo } from "../../lib/unwind/_call_site.ts";
import { backtraceCore } from "../../lib/unwind/mod.ts";
import { CoreInspectorStream } from "../../lib/elf/mod.ts";
import { check, kernelCore, tempDir } from "../_helpers.ts";

interface Case {
  name: string;
  machine: number;
  littleEndian: boolean;
  cc: string;
  flags: string[];
  objdump: string;
  source: string;
  /** objdump's mnemonics of calls. */
  calls: RegExp;
  /** Bytes between a call's end and its return address (a delay slot). */
  delay?: number;
  /** Thumb: return addresses have bit 0 set. */
  thumb?: boolean;
}

const CASES: Case[] = [
  {
    name: "x86_64",
    machine: EM_X86_64,
    littleEndian: true,
    cc: "gcc",
    flags: [],
    objdump: "objdump",
    calls: /^call/,
    source: `
f: call f
  mov %rax, %rbx
  call *%rax
  add $1, %rax
  call *%r8
  ret
  call *(%rax)
  nop
  call *8(%rbx)
  push %rbp
  call *0x100(%rbx)
  jmp *%rax
  call *(%rax,%rcx,8)
  jmp *%r9
  call *0x40(%rip)
  lea 8(%rsp), %rsp
  call *%fs:0x10
  xor %eax, %eax
  call *0x10(%rsp)
  ret
`,
  },
  {
    name: "i386",
    machine: EM_386,
    littleEndian: true,
    cc: "gcc",
    flags: ["-m32"],
    objdump: "objdump",
    calls: /^call/,
    source: `
f: call f
  mov %eax, %ebx
  call *%eax
  ret
  call *(%eax)
  nop
  call *8(%ebx)
  jmp *%eax
  call *%gs:0x10
  push %ebp
  call *0x100(%ebx,%ecx,4)
  ret
`,
  },
  {
    name: "aarch64",
    machine: EM_AARCH64,
    littleEndian: true,
    cc: "aarch64-linux-gnu-gcc",
    flags: ["-march=armv8.3-a"],
    objdump: "aarch64-linux-gnu-objdump",
    calls: /^(bl|blr|blraa|blraaz|blrab|blrabz)$/,
    source: `
f: bl f
  mov x0, x1
  blr x3
  ret
  blraaz x4
  br x3
  blraa x1, x2
  b f
  blrab x5, x6
  nop
  blrabz x7
  add x0, x0, #1
  retaa
`,
  },
  {
    name: "arm",
    machine: EM_ARM,
    littleEndian: true,
    cc: "arm-linux-gnueabihf-gcc",
    flags: ["-marm"],
    objdump: "arm-linux-gnueabihf-objdump",
    calls: /^(bl|blx|blne|bleq)$/,
    source: `
.arm
f: bl f
  mov r0, r1
  blx r3
  bx lr
  blne f
  b f
  bleq f
  nop
  blx t
  ldr pc, [sp], #4
.thumb
t: nop
`,
  },
  {
    name: "thumb",
    machine: EM_ARM,
    littleEndian: true,
    cc: "arm-linux-gnueabihf-gcc",
    flags: ["-mthumb"],
    objdump: "arm-linux-gnueabihf-objdump",
    calls: /^(bl|blx)$/,
    thumb: true,
    source: `
.syntax unified
.arm
a: nop
.thumb
f: bl f
  mov r0, r1
  blx r3
  bx lr
  blx a
  adds r0, #1
  b.w f
  nop
  blx r4
  pop {r4, pc}
  bl f
  movs r0, #0
`,
  },
  {
    name: "mips",
    machine: EM_MIPS,
    littleEndian: false,
    cc: "mips-linux-gnu-gcc",
    flags: [],
    objdump: "mips-linux-gnu-objdump",
    calls: /^(jal|jalr|bal|bgezal|bltzal|jalx)$/,
    delay: 4,
    source: `
.set noreorder
.set nomacro
f: jal f
  nop
  addiu $sp, $sp, -8
  jalr $t9
  move $a0, $a1
  jr $ra
  nop
  bal f
  lw $a0, 0($sp)
  j f
  nop
  bgezal $a0, f
  nop
  bltzal $a1, f
  sw $ra, 4($sp)
  b f
  nop
`,
  },
  {
    name: "powerpc",
    machine: EM_PPC,
    littleEndian: false,
    cc: "powerpc-linux-gnu-gcc",
    flags: [],
    objdump: "powerpc-linux-gnu-objdump",
    calls: /^(bl|bctrl|blrl|bcl|bla)$/,
    source: `
f: bl f
  li 3, 0
  bctrl
  blr
  blrl
  mtctr 3
  bcl 20, 31, 1f
1: bctr
  b f
  nop
  bl f
  addi 1, 1, 16
`,
  },
];

/** Each instruction of `.text`: its offset, length and mnemonic. */
function instructions(listing: string) {
  const found: { at: number; length: number; mnemonic: string }[] = [];
  for (const line of listing.split("\n")) {
    const match = /^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(\S+)/.exec(line);
    if (match === null) continue;
    const bytes = match[2]!.trim().split(/\s+/).join("");
    found.push({
      at: parseInt(match[1]!, 16),
      length: bytes.length / 2,
      mnemonic: match[3]!,
    });
  }
  return found;
}

for (const c of CASES) {
  Deno.test(`call site: ${c.name}, after each instruction, as objdump reads them`, async () => {
    await using dir = await tempDir();
    const source = `${dir.path}/calls.s`;
    const object = `${dir.path}/calls.o`;
    const text = `${dir.path}/text.bin`;
    await Deno.writeTextFile(source, c.source);
    await check(c.cc, [...c.flags, "-c", "-o", object, source]);
    await check(c.objdump.replace(/objdump$/, "objcopy"), [
      "-O",
      "binary",
      "-j",
      ".text",
      object,
      text,
    ]);
    const bytes = await Deno.readFile(text);
    const listing = instructions(
      await check(c.objdump, ["-d", "--insn-width=16", "-j", ".text", object]),
    );
    assert.ok(listing.length >= 10, JSON.stringify(listing));
    const code = (address: bigint, size: number) => {
      const at = Number(address);
      return Promise.resolve(
        at < 0 || at + size > bytes.length
          ? undefined
          : bytes.slice(at, at + size),
      );
    };
    let calls = 0;
    for (const [i, instruction] of listing.entries()) {
      // A return address of a call, after its delay slot where it has one.
      const callAt = c.delay === undefined ? instruction : listing[i - 1];
      const end = instruction.at + instruction.length;
      if (end + 8 > bytes.length && c.delay !== undefined) continue;
      const expected = callAt !== undefined && c.calls.test(callAt.mnemonic);
      if (expected) calls++;
      const ra = BigInt(end) | (c.thumb ? 1n : 0n);
      // Below 8 bytes from the start a call cannot be read before it.
      if (end < 8) continue;
      assert.equal(
        await mayReturnTo(c.machine, ra, {
          littleEndian: c.littleEndian,
          code,
        }),
        expected,
        `${c.name}: after ${callAt?.mnemonic} at 0x${
          (callAt?.at ?? 0).toString(16)
        } (0x${end.toString(16)})`,
      );
    }
    assert.ok(calls >= 4, `${c.name}: ${calls} calls`);
  });
}

Deno.test("call site: an address that is not aligned as instructions are is no return address", async () => {
  for (const machine of [EM_AARCH64, EM_MIPS, EM_PPC]) {
    for (const ra of [0x400002n, 0x400853n]) {
      assert.equal(
        await mayReturnTo(machine, ra, {
          littleEndian: false,
          code: undefined,
        }),
        false,
      );
    }
    assert.equal(
      await mayReturnTo(machine, 0x400854n, {
        littleEndian: false,
        code: undefined,
      }),
      true,
    );
  }
});

Deno.test("call site: a scan passes over pointers into code that no call returns to", async () => {
  await using dir = await tempDir();
  const source = `${dir.path}/decoy.c`;
  // crash() has no CFI and no frame pointer: its caller is found by
  // scanning its stack, where, above the frame, the array of middle()
  // holds function addresses (after no call) before the return address.
  await Deno.writeTextFile(
    source,
    `
__attribute__((noinline)) void decoy_a(void) { __asm__ volatile(""); }
__attribute__((noinline)) void decoy_b(void) { __asm__ volatile(""); }
__attribute__((noinline)) void crash(void *volatile *slots) {
  slots[0] = (void *)decoy_a;
  *(volatile int *)0 = 0;
}
__attribute__((noinline)) void middle(void) {
  void *volatile slots[8];
  for (int i = 1; i < 8; i++)
    slots[i] = i % 2 ? (void *)decoy_a : (void *)((char *)decoy_b + 4);
  crash(slots);
  __asm__ volatile("");
}
int main(void) { middle(); return 0; }
`,
  );
  const program = `${dir.path}/decoy`;
  await check("gcc", [
    "-O1",
    "-fomit-frame-pointer",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fcf-protection=none",
    "-o",
    program,
    source,
  ]);
  // The oracle: where objdump says each call returns to (a PIE is linked
  // at 0, so that is the return address's offset in the module).
  const disassembly = await check("objdump", [
    "-d",
    "--insn-width=16",
    program,
  ]);
  const listing = instructions(disassembly);
  const returnAfter = (callee: string) => {
    const line = disassembly.split("\n").find((l) =>
      /\tcall\s/.test(l) && l.includes(`<${callee}>`)
    );
    assert.ok(line, `no call of ${callee}`);
    const at = parseInt(/^\s*([0-9a-f]+):/.exec(line)![1]!, 16);
    return BigInt(at + listing.find((i) => i.at === at)!.length);
  };
  const core = await kernelCore(program, [], dir.path);
  const inspector = new CoreInspectorStream();
  {
    using input = await Deno.open(core);
    for await (const chunk of input.readable) inspector.inspect(chunk);
  }
  const trace = await backtraceCore(inspector.report);
  const frames = trace.threads[0]!.frames;
  const names = frames.map((f) => `${f.function}:${f.trust}`).join(" ");
  assert.equal(frames[0]!.function, "crash", names);
  assert.equal(frames[1]!.function, "middle", names);
  assert.equal(frames[1]!.trust, "scan", names);
  assert.ok(!names.includes("decoy"), names);
  assert.equal(frames[2]!.function, "main", names);
  // The return addresses are where objdump says the calls return.
  assert.equal(frames[1]!.offset, returnAfter("crash"));
  assert.equal(frames[2]!.offset, returnAfter("middle"));
});
