/**
 * The general registers a core's `NT_PRSTATUS` note holds (`pr_reg`, the
 * kernel's `elf_gregset_t`), named by the DWARF register numbers each
 * architecture's psABI gives them, so an unwinder can use them as they are.
 *
 * @module
 */

import {
  EM_386,
  EM_AARCH64,
  EM_ARM,
  EM_MIPS,
  EM_PPC,
  EM_RISCV,
  EM_X86_64,
} from "./elf.ts";

/** A thread's registers, by DWARF number, and its PC and stack pointer. */
export interface RegisterSet {
  /** The program counter. */
  pc: bigint;
  /** The stack pointer. */
  sp: bigint;
  /**
   * Every register the layout names, by DWARF register number (the PC of
   * x86_64 and i386 has one: 16 and 8; aarch64's has none and is only in
   * {@linkcode RegisterSet.pc}).
   */
  values: Map<number, bigint>;
}

/**
 * `pr_reg` word index to DWARF register number, per machine; -1 for words
 * DWARF does not number. Also the words of the PC and the stack pointer.
 */
interface Layout {
  dwarf: readonly number[];
  pc: number;
  sp: number;
}

const LAYOUTS: ReadonlyMap<number, Layout> = new Map([
  // struct user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx
  // rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs.
  [EM_X86_64, {
    dwarf: [
      15,
      14,
      13,
      12,
      6,
      3,
      11,
      10,
      9,
      8,
      0,
      2,
      1,
      4,
      5,
      -1,
      16,
      -1,
      49,
      7,
    ],
    pc: 16,
    sp: 19,
  }],
  // struct user_pt_regs: x0..x30, sp, pc, pstate.
  [EM_AARCH64, {
    dwarf: [...Array.from({ length: 31 }, (_, i) => i), 31],
    pc: 32,
    sp: 31,
  }],
  // struct user_regs_struct (i386): ebx ecx edx esi edi ebp eax ds es fs gs
  // orig_eax eip cs eflags esp ss.
  [EM_386, {
    dwarf: [3, 1, 2, 6, 7, 5, 0, -1, -1, -1, -1, -1, 8, -1, 9, 4],
    pc: 12,
    sp: 15,
  }],
  // struct pt_regs (arm): r0..r15 (sp is r13, pc r15), cpsr, orig_r0.
  [EM_ARM, {
    dwarf: Array.from({ length: 16 }, (_, i) => i),
    pc: 15,
    sp: 13,
  }],
  // elf_gregset_t (mips o32): 6 words of padding, r0..r31, lo, hi, epc.
  [EM_MIPS, {
    dwarf: [-1, -1, -1, -1, -1, -1, ...Array.from({ length: 32 }, (_, i) => i)],
    pc: 40,
    sp: 35,
  }],
  // struct user_regs_struct (riscv): pc, then x1..x31.
  [EM_RISCV, {
    dwarf: [-1, ...Array.from({ length: 31 }, (_, i) => i + 1)],
    pc: 0,
    sp: 2,
  }],
  // struct pt_regs (powerpc): gpr0..31, nip, msr, orig_gpr3, ctr, link.
  [EM_PPC, {
    dwarf: [
      ...Array.from({ length: 32 }, (_, i) => i),
      -1,
      -1,
      -1,
      66,
      65,
    ],
    pc: 32,
    sp: 1,
  }],
]);

/**
 * Names a thread's `pr_reg` words by DWARF register number.
 *
 * @example Usage
 * ```ts
 * import { threadRegisters } from "./registers.ts";
 * import { EM_AARCH64, EM_X86_64 } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // x86_64: rip is word 16 (DWARF 16), rsp word 19 (DWARF 7).
 * const words = Array.from({ length: 27 }, (_, i) => BigInt(i) * 0x10n);
 * const regs = threadRegisters(EM_X86_64, words)!;
 * assert.equal(regs.pc, 0x100n);
 * assert.equal(regs.sp, 0x130n);
 * assert.equal(regs.values.get(7), 0x130n);
 * assert.equal(regs.values.get(6), 0x40n); // rbp, word 4
 *
 * // aarch64: x0..x30, sp, pc, pstate.
 * const a = threadRegisters(EM_AARCH64, Array.from({ length: 34 }, (_, i) => BigInt(i)))!;
 * assert.deepEqual([a.pc, a.sp, a.values.get(30)], [32n, 31n, 30n]);
 * assert.equal(threadRegisters(EM_X86_64, [1n, 2n]), undefined);
 * ```
 *
 * @param machine The core's `e_machine`.
 * @param words The `pr_reg` words, in note order.
 * @returns The registers, or undefined for a machine without a layout here
 *   or too few words.
 */
export function threadRegisters(
  machine: number,
  words: readonly bigint[],
): RegisterSet | undefined {
  const layout = LAYOUTS.get(machine);
  if (layout === undefined) return undefined;
  if (words.length <= Math.max(layout.pc, layout.sp)) return undefined;
  const values = new Map<number, bigint>();
  layout.dwarf.forEach((number, index) => {
    if (number >= 0 && index < words.length) values.set(number, words[index]!);
  });
  return { pc: words[layout.pc]!, sp: words[layout.sp]!, values };
}
