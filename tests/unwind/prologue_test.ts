/**
 * Frames read from prologues (functions without unwind tables, MIPS and
 * ARM) against the compiler's own CFI for the same code: functions of
 * several shapes (a small frame, many saved registers, frames of 5000
 * bytes and of 70000 (over MIPS's 32 KiB immediate),
 * floating-point registers, a variable-length array and so a frame
 * pointer), built by gcc with `.debug_frame`, for MIPS, ARM and Thumb at
 * -O2 and -O0. At every return address of a call in them, where the
 * unwinder would need it, the prologue must give the CFA and the saved
 * return address that gcc's CFI gives.
 */

import assert from "node:assert/strict";
import { PT_LOAD, readElf } from "../../lib/elf/mod.ts";
import { type CfaRow, loadModuleFile } from "../../lib/unwind/mod.ts";
import {
  armPrologue,
  mipsPrologue,
  type PrologueFrame,
} from "../../lib/unwind/_prologue.ts";
import { check, tempDir } from "../_helpers.ts";

const SOURCE = `
extern void sink(void *);
extern double dsink(double);
void small(void) { int x = 1; sink(&x); }
void saved(int a, int b, int c, int d) {
  int x[4] = { a, b, c, d };
  sink(x); sink(&a); sink(&b); sink(&c); sink(&d);
  sink((void *)(long)(a + b + c + d));
}
void large(void) { char buffer[5000]; sink(buffer); sink(buffer + 1); }
void huge(void) { char buffer[70000]; sink(buffer); sink(buffer + 1); }
double floating(double a, double b) {
  double c = dsink(a) * b;
  return dsink(c + a) + c;
}
void variable(int n) { char buffer[n]; sink(buffer); sink(buffer + n - 1); }
void sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }
double dsink(double d) { __asm__ volatile("" : "+r"(d)); return d; }
void _start(void) { small(); saved(1, 2, 3, 4); large(); huge(); floating(1, 2); variable(9); for (;;); }
`;

const FUNCTIONS = [
  "small",
  "saved",
  "large",
  "huge",
  "floating",
  "variable",
];

/** How one instruction set is built and read. */
interface InstructionSet {
  /** The cross toolchain's prefix. */
  toolchain: string;
  /** objdump's calls. */
  calls: RegExp;
  /** DWARF number of the return address. */
  ra: number;
  /** MIPS: a call's return address is after its delay slot. */
  mips: boolean;
}

const ARM: InstructionSet = {
  toolchain: "arm-linux-gnueabihf-",
  calls: /\t(bl|blx)\s/,
  ra: 14,
  mips: false,
};
const MIPS: InstructionSet = {
  toolchain: "mips-linux-gnu-",
  calls: /\t(jal|jalr|bal)\s/,
  ra: 31,
  mips: true,
};
const TARGETS = ["-O2", "-O0"].flatMap((level) => [
  { name: `thumb ${level}`, ...ARM, flags: [level, "-mthumb"] },
  { name: `arm ${level}`, ...ARM, flags: [level, "-marm"] },
  {
    name: `mips ${level}`,
    ...MIPS,
    flags: [level, "-mno-abicalls", "-fno-pic"],
  },
]);

for (const target of TARGETS) {
  Deno.test(`prologue: ${target.name}, the CFA and return address gcc's CFI gives`, async () => {
    await using dir = await tempDir();
    const source = `${dir.path}/prologues.c`;
    const program = `${dir.path}/prologues`;
    await Deno.writeTextFile(source, SOURCE);
    await check(`${target.toolchain}gcc`, [
      ...target.flags,
      "-g",
      "-fno-inline",
      "-fno-optimize-sibling-calls",
      "-nostdlib",
      "-static",
      "-o",
      program,
      source,
    ]);
    using file = await Deno.open(program);
    const elf = await readElf(file);
    const first = elf.programs.find((p) => p.type === PT_LOAD)!;
    const start = (first.vaddr - BigInt(first.offset)) & ~0xfffn;
    const image = await loadModuleFile(file, { path: program, start });
    const { cfi, symbols, code } = image;
    assert.ok(cfi !== undefined && symbols !== undefined && code !== undefined);
    const disassembly = await check(`${target.toolchain}objdump`, [
      "-d",
      program,
    ]);
    let compared = 0;
    for (const name of FUNCTIONS) {
      const body = functionLines(disassembly, name);
      assert.ok(body.length > 0, `${target.name}: no ${name}`);
      const calls = body.filter((line) => target.calls.test(line.text));
      for (const call of calls) {
        // The return address: after the call (MIPS: after its delay slot).
        const next = body.findIndex((l) => l.address === call.address) +
          (target.mips ? 2 : 1);
        const ra: bigint | undefined = body[next]?.address;
        if (ra === undefined) continue;
        const row: CfaRow | undefined = cfi.row(ra - 1n);
        assert.ok(row, `${target.name}: no CFI at 0x${ra.toString(16)}`);
        const symbol: { name: string; offset: bigint } = symbols.lookup(
          ra - 1n,
        )!;
        assert.equal(symbol.name, name);
        const functionStart = ra - 1n - symbol.offset;
        const frame: PrologueFrame | undefined = target.mips
          ? await mipsPrologue(functionStart, ra, {
            littleEndian: false,
            is64: false,
            code,
          })
          : await armPrologue(functionStart, ra, {
            littleEndian: true,
            code,
          });
        const where: string = `${target.name} ${name} at 0x${
          ra.toString(16)
        }: CFI ${show(row)}, prologue ${show(frame)}`;
        assert.ok(frame, `${where}: no frame`);
        assert.equal(row.cfa.kind, "register", where);
        if (row.cfa.kind !== "register") continue;
        // The same CFA: from the same register, or from sp and a frame
        // pointer that points where the CFI says.
        assert.deepEqual(
          [frame.base, BigInt(frame.offset)],
          [row.cfa.register, row.cfa.offset],
          `${where}: CFA`,
        );
        const raRule = row.registers.get(target.ra);
        assert.equal(
          raRule?.kind,
          "offset",
          `${where}: ${show(raRule)}`,
        );
        if (raRule?.kind !== "offset") continue;
        assert.equal(
          BigInt(frame.saved.get(target.ra) ?? NaN),
          raRule.offset,
          `${where}: the return address's slot`,
        );
        // Every integer register the CFI saves, in the same slot.
        for (const [register, rule] of row.registers) {
          if (register >= 32 || rule.kind !== "offset") continue;
          assert.equal(
            frame.saved.get(register),
            Number(rule.offset),
            `${where}: register ${register}`,
          );
        }
        compared++;
      }
    }
    assert.ok(compared >= 8, `${target.name}: ${compared} calls compared`);
  });
}

/** A function's instructions in objdump's listing: address and text. */
function functionLines(disassembly: string, name: string) {
  const lines: { address: bigint; text: string }[] = [];
  let inside = false;
  for (const line of disassembly.split("\n")) {
    if (/^[0-9a-f]+ <.*>:$/.test(line)) {
      inside = line.endsWith(` <${name}>:`);
      continue;
    }
    const match = /^\s*([0-9a-f]+):\t/.exec(line);
    if (inside && match !== null) {
      lines.push({ address: BigInt(`0x${match[1]}`), text: line });
    }
  }
  return lines;
}

/** A rule or frame, bigints and maps included, for messages. */
function show(value: unknown): string {
  return JSON.stringify(
    value,
    (_, v) =>
      typeof v === "bigint"
        ? v.toString()
        : v instanceof Map
        ? Object.fromEntries(v)
        : v,
  );
}
