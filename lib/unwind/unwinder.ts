/**
 * Walks one thread's stack: from the registers the core holds (frame 0),
 * each caller is found by the first method that works, in order of trust:
 *
 * 1. a signal frame the kernel wrote (aarch64's `rt_sigreturn` trampoline:
 *    the whole saved context), trusted as much as the core's registers;
 * 2. the module's DWARF call frame information (on ARM, its EHABI tables);
 * 3. on MIPS and ARM, for a function without either, what its prologue
 *    did;
 * 4. the frame pointer chain;
 * 5. a scan of the stack for a word that points into known code, right
 *    after a call instruction.
 *
 * Each frame says how it was found (`context`, `cfi`, `prologue`, `fp`,
 * `scan`), as
 * rust-minidump's frame trust does. The walk stops at an undefined return
 * address, a PC of 0, a stack that does not grow, 64 frames or the deadline.
 * It never throws: what stopped it is in the result's `error`.
 *
 * @module
 */

import {
  EM_386,
  EM_AARCH64,
  EM_ARM,
  EM_MIPS,
  EM_PPC,
  EM_X86_64,
  type RegisterSet,
} from "../elf/mod.ts";
import { errorText } from "../util/mod.ts";
import type { CfaRow } from "./cfi.ts";
import { evaluateExpression, type ExpressionContext } from "./expression.ts";
import type { ModuleImage } from "./module_image.ts";
import { runExidx } from "./arm_exidx.ts";
import { mayReturnTo } from "./_call_site.ts";
import { armPrologue, mipsPrologue } from "./_prologue.ts";

/** How a frame was found. */
export type FrameTrust = "context" | "cfi" | "prologue" | "fp" | "scan";

/** One frame of a walk. */
export interface UnwoundFrame {
  /** The frame's PC: the crash address for frame 0, else a return address. */
  pc: bigint;
  /** The frame's stack pointer (the callee's CFA). */
  sp: bigint;
  /** How the frame was found. */
  trust: FrameTrust;
  /**
   * True when the PC is where the thread stopped (frame 0, or a frame a
   * signal interrupted), false for a return address (the call is before it).
   */
  exact: boolean;
}

/** The process the walk reads. */
export interface UnwindTarget {
  /** The core's `e_machine`. */
  machine: number;
  /** The core's byte order. */
  littleEndian: boolean;
  /** `size` bytes of the process's memory at `address`; undefined when not kept. */
  read(address: bigint, size: number): bigint | undefined;
  /** The module mapped at `address`, loaded; undefined when none is. */
  module(address: bigint): Promise<ModuleImage | undefined>;
  /** True when `address` is in an executable mapping of a module. */
  isCode(address: bigint): boolean;
  /**
   * `size` bytes of code at `address` (from the core, or the module's
   * file); undefined where not known. Without it, a scanned word is
   * taken for a return address without looking at the call before it.
   */
  code?: (address: bigint, size: number) => Promise<Uint8Array | undefined>;
  /**
   * The program's entry point (`AT_ENTRY`): the function that holds it is
   * the outermost frame of the main thread, and the walk ends there.
   */
  entry?: bigint;
  /**
   * aarch64: the bits of a return address that hold a pointer
   * authentication code (`NT_ARM_PAC_MASK`, or what lies above the highest
   * mapped address); cleared from every return address.
   */
  codeMask?: bigint;
}

/** Options for {@linkcode unwindThread}. */
export interface UnwindOptions {
  /**
   * Frames at most.
   *
   * @default {64}
   */
  maxFrames?: number;
  /**
   * Stop when `performance.now()` passes this.
   *
   * @default {Infinity}
   */
  deadline?: number;
}

/** A thread's walk. */
export interface UnwindResult {
  /** The frames, innermost first. */
  frames: UnwoundFrame[];
  /** Why the walk stopped before the stack's end, when it did. */
  error?: string;
}

/** The architectures this walker knows, by `e_machine`. */
interface Arch {
  /** DWARF numbers of the stack pointer, frame pointer and return address. */
  sp: number;
  fp: number;
  ra: number;
  /** The PC's DWARF number, when it has one. */
  pc?: number;
  /** True when calls leave the return address in a register (`ra`). */
  linkRegister?: boolean;
  /** Bytes of an address: 4 or 8. */
  word: 4 | 8;
  /** Reads the registers a signal frame saved, when `pc` is a trampoline. */
  sigreturn?: (
    pc: bigint,
    sp: bigint,
    target: UnwindTarget,
  ) => Map<number, bigint> & { pc?: bigint } | undefined;
}

const ARCHES: ReadonlyMap<number, Arch> = new Map<number, Arch>([
  [EM_X86_64, { sp: 7, fp: 6, ra: 16, pc: 16, word: 8 }],
  [EM_386, { sp: 4, fp: 5, ra: 8, pc: 8, word: 4 }],
  // The CFI of these comes from .eh_frame (mips, powerpc) or .debug_frame
  // (armhf, whose gcc writes .ARM.exidx for unwinding); their calls leave
  // the return address in a register (lr, ra, LR).
  [EM_ARM, { sp: 13, fp: 11, ra: 14, pc: 15, linkRegister: true, word: 4 }],
  [EM_MIPS, { sp: 29, fp: 30, ra: 31, linkRegister: true, word: 4 }],
  [EM_PPC, { sp: 1, fp: 31, ra: 65, linkRegister: true, word: 4 }],
  [EM_AARCH64, {
    sp: 31,
    fp: 29,
    ra: 30,
    linkRegister: true,
    word: 8,
    sigreturn: aarch64Sigreturn,
  }],
]);

/** Words scanned at most, from a frame's stack pointer up. */
const SCAN_WORDS = 1024;

/**
 * True when {@linkcode unwindThread} walks stacks of this machine.
 *
 * @example Usage
 * ```ts
 * import { canUnwind } from "./unwinder.ts";
 * import { EM_RISCV, EM_X86_64 } from "../elf/mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(canUnwind(EM_X86_64), true);
 * assert.equal(canUnwind(EM_RISCV), false);
 * ```
 *
 * @param machine An `e_machine`.
 * @returns Whether the walker knows it.
 */
export function canUnwind(machine: number): boolean {
  return ARCHES.has(machine);
}

/**
 * Walks a thread's stack.
 *
 * @example A frame pointer chain on x86_64, with no module to give CFI
 * ```ts
 * import { unwindThread } from "./unwinder.ts";
 * import { EM_X86_64 } from "../elf/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Stack at 0x1000: frame records [saved rbp, return address].
 * const memory = new Map([[0x1010n, 0x1030n], [0x1018n, 0x401234n], [0x1030n, 0n], [0x1038n, 0x401300n]]);
 * const result = await unwindThread({
 *   pc: 0x401100n,
 *   sp: 0x1000n,
 *   values: new Map([[6, 0x1010n], [7, 0x1000n], [16, 0x401100n]]),
 * }, {
 *   machine: EM_X86_64,
 *   littleEndian: true,
 *   read: (address) => memory.get(address),
 *   module: () => Promise.resolve(undefined),
 *   isCode: (address) => address >= 0x401000n && address < 0x402000n,
 * });
 * assert.deepEqual(result.frames.map((f) => [f.pc, f.trust]), [
 *   [0x401100n, "context"],
 *   [0x401234n, "fp"],
 *   [0x401300n, "fp"],
 * ]);
 * ```
 *
 * @param registers Frame 0's registers, as the core holds them.
 * @param target The process's memory and modules.
 * @param options Limits.
 * @returns The frames, and why the walk stopped early when it did.
 */
export async function unwindThread(
  registers: RegisterSet,
  target: UnwindTarget,
  options: UnwindOptions = {},
): Promise<UnwindResult> {
  const { maxFrames = 64, deadline = Infinity } = options;
  const frames: UnwoundFrame[] = [{
    pc: registers.pc,
    sp: registers.sp,
    trust: "context",
    exact: true,
  }];
  const arch = ARCHES.get(target.machine);
  if (arch === undefined) {
    return { frames, error: "unsupported architecture" };
  }
  let regs = new Map(registers.values);
  regs.set(arch.sp, registers.sp);
  let pc = registers.pc;
  let sp = registers.sp;
  // Frame 0 and a frame a signal interrupted are at their PC, not after a
  // call: look their rules up at the PC itself, not the byte before.
  let exact = true;
  while (frames.length < maxFrames) {
    if (performance.now() > deadline) {
      return { frames, error: "stopped at the time limit" };
    }
    const step = await next(arch, target, regs, pc, sp, exact);
    if (step.end) return { frames };
    if (step.error !== undefined) return { frames, error: step.error };
    const found = step.frame!;
    if (found.pc === 0n) return { frames };
    frames.push({
      pc: found.pc,
      sp: found.sp,
      trust: found.trust,
      exact: found.exact,
    });
    regs = found.registers;
    pc = found.pc;
    sp = found.sp;
    exact = found.exact;
  }
  return { frames };
}

interface Found {
  pc: bigint;
  sp: bigint;
  trust: FrameTrust;
  registers: Map<number, bigint>;
  exact: boolean;
}

interface Step {
  end?: boolean;
  error?: string;
  frame?: Found;
}

/** The caller of the frame at `pc`/`sp`, by the first method that works. */
async function next(
  arch: Arch,
  target: UnwindTarget,
  regs: Map<number, bigint>,
  pc: bigint,
  sp: bigint,
  exact: boolean,
): Promise<Step> {
  const reasons: string[] = [];
  const progress = (found: Found, allowDown: boolean): boolean => {
    if (found.pc === 0n) return true;
    if (!allowDown && found.sp < sp) {
      reasons.push(`the stack pointer went down to 0x${found.sp.toString(16)}`);
      return false;
    }
    if (found.sp === sp && found.pc === pc) {
      reasons.push("no progress: the same PC and stack pointer");
      return false;
    }
    return true;
  };
  const signal = arch.sigreturn?.(pc, sp, target);
  if (signal !== undefined) {
    const found: Found = {
      pc: strip(signal.pc ?? 0n, target),
      sp: signal.get(arch.sp) ?? 0n,
      trust: "context",
      registers: signal,
      exact: true,
    };
    return { frame: found };
  }
  const lookup = exact ? pc : pc - 1n;
  let module: ModuleImage | undefined;
  try {
    module = await target.module(lookup);
  } catch (error) {
    reasons.push(errorText(error));
  }
  if (module !== undefined && inEntryFunction(module, lookup, target.entry)) {
    return { end: true };
  }
  let covered = false;
  if (module?.cfi !== undefined) {
    try {
      const row = module.cfi.row(lookup - module.bias);
      covered = row !== undefined;
      if (row === undefined) {
        reasons.push(`no CFI for 0x${pc.toString(16)} in ${module.path}`);
      } else {
        const step = applyRow(arch, target, row, regs, module);
        if (step.end) return step;
        if (step.frame !== undefined && progress(step.frame, row.signalFrame)) {
          return step;
        }
      }
    } catch (error) {
      reasons.push(errorText(error));
    }
  } else {
    reasons.push(
      module === undefined
        ? `0x${pc.toString(16)} is in no known module`
        : `no CFI in ${module.path}${module.error ? ` (${module.error})` : ""}`,
    );
  }
  // ARM: the EHABI tables, where no DWARF CFI covers the address.
  if (module?.exidx !== undefined) {
    try {
      const entry = module.exidx.find(lookup - module.bias);
      if (entry !== undefined) covered = true;
      if (entry?.kind === "cantunwind") return { end: true };
      if (entry !== undefined) {
        const caller = runExidx(
          entry.opcodes,
          regs,
          (address) => target.read(address, 4),
        );
        const found: Found = {
          pc: strip(caller.get(15)!, target),
          sp: caller.get(arch.sp)!,
          trust: "cfi",
          registers: caller,
          exact: false,
        };
        found.registers.set(15, found.pc);
        if (progress(found, false)) return { frame: found };
      }
    } catch (error) {
      reasons.push(errorText(error));
    }
  }
  // MIPS and ARM: a function without unwind tables, by its prologue.
  if (
    (target.machine === EM_MIPS || target.machine === EM_ARM) && !covered &&
    module?.symbols !== undefined && target.code !== undefined
  ) {
    const found = await fromPrologue(arch, target, module, regs, {
      pc,
      sp,
      exact,
    });
    if (found !== undefined && progress(found, false)) return { frame: found };
  }
  const returnsTo = (value: bigint) =>
    target.isCode(strip(value, target)) &&
    mayReturnTo(target.machine, value, {
      littleEndian: target.littleEndian,
      code: target.code,
    });
  // A call through a bad pointer stops at a PC in no code: on a machine
  // whose calls push the return address, the caller's is at the top of
  // the stack.
  if (exact && !arch.linkRegister && !target.isCode(pc)) {
    const top = target.read(sp, arch.word);
    if (top !== undefined && await returnsTo(top)) {
      const found = frameFrom(
        arch,
        regs,
        strip(top, target),
        sp + BigInt(arch.word),
        "scan",
      );
      if (progress(found, false)) return { frame: found };
    }
  }
  // aarch64: where no CFI covers frame 0 (or a frame a signal stopped), a
  // leaf's caller is in the link register.
  if (arch.linkRegister && exact) {
    const lr = regs.get(arch.ra);
    if (lr !== undefined) {
      const found = frameFrom(arch, regs, strip(lr, target), sp, "fp");
      if (target.isCode(found.pc) && progress(found, false)) {
        return { frame: found };
      }
    }
  }
  const fp = regs.get(arch.fp);
  const word = BigInt(arch.word);
  if (fp !== undefined && fp >= sp && fp % word === 0n) {
    const savedFp = target.read(fp, arch.word);
    const ra = target.read(fp + word, arch.word);
    if (savedFp !== undefined && ra !== undefined) {
      const found = frameFrom(
        arch,
        regs,
        strip(ra, target),
        fp + 2n * word,
        "fp",
      );
      found.registers.set(arch.fp, savedFp);
      if (
        found.pc !== 0n && target.isCode(found.pc) && progress(found, false)
      ) {
        return { frame: found };
      }
    }
  }
  for (let i = 0; i < SCAN_WORDS; i++) {
    const slot = sp + BigInt(i) * word;
    const value = target.read(slot, arch.word);
    if (value === undefined) break;
    const candidate = strip(value, target);
    if (candidate === pc && i === 0) continue;
    if (!await returnsTo(value)) continue;
    const found = frameFrom(arch, regs, candidate, slot + word, "scan");
    if (progress(found, false)) return { frame: found };
  }
  reasons.push("no return address found by scanning");
  return { error: reasons.join("; ") };
}

/** True when `address` is in the function that holds the entry point. */
function inEntryFunction(
  module: ModuleImage,
  address: bigint,
  entry: bigint | undefined,
): boolean {
  if (entry === undefined || module.symbols === undefined) return false;
  const here = module.symbols.lookup(address - module.bias);
  const start = module.symbols.lookup(entry - module.bias);
  return here !== undefined && start !== undefined &&
    address - here.offset === entry - start.offset;
}

/**
 * MIPS and ARM: the caller of a function that has no unwind tables, from
 * what its prologue did before the PC; undefined when that cannot be known.
 */
async function fromPrologue(
  arch: Arch,
  target: UnwindTarget,
  module: ModuleImage,
  regs: Map<number, bigint>,
  at: { pc: bigint; sp: bigint; exact: boolean },
): Promise<Found | undefined> {
  const { pc, exact } = at;
  const lookup = exact ? pc : pc - 1n;
  const symbol = module.symbols?.lookup(lookup - module.bias);
  if (symbol === undefined) return undefined;
  // Thumb functions' symbols are odd: so is their start here.
  const start = lookup - symbol.offset;
  const options = { littleEndian: target.littleEndian, code: target.code! };
  const frame = target.machine === EM_MIPS
    ? await mipsPrologue(start, pc, { ...options, is64: arch.word === 8 })
    : await armPrologue(start, pc, options);
  // No frame: a leaf, whose caller the link register path finds.
  if (frame === undefined) return undefined;
  const base = frame.base === arch.sp ? at.sp : regs.get(frame.base);
  if (base === undefined) return undefined;
  const bits = arch.word * 8;
  const cfa = BigInt.asUintN(bits, base + BigInt(frame.offset));
  const registers = new Map(regs);
  for (const [number, offset] of frame.saved) {
    const value = target.read(
      BigInt.asUintN(bits, cfa + BigInt(offset)),
      arch.word,
    );
    if (value === undefined) registers.delete(number);
    else registers.set(number, value);
  }
  const saved = frame.saved.has(arch.ra)
    ? registers.get(arch.ra)
    : exact
    ? regs.get(arch.ra)
    : undefined;
  if (saved === undefined) return undefined;
  const caller = strip(saved, target);
  registers.set(arch.sp, cfa);
  if (arch.pc !== undefined) registers.set(arch.pc, caller);
  return { pc: caller, sp: cfa, trust: "prologue", registers, exact: false };
}

/** A caller at `pc`/`sp`, the other registers as the callee left them. */
function frameFrom(
  arch: Arch,
  regs: Map<number, bigint>,
  pc: bigint,
  sp: bigint,
  trust: FrameTrust,
): Found {
  const registers = new Map(regs);
  registers.set(arch.sp, sp);
  if (arch.pc !== undefined) registers.set(arch.pc, pc);
  return { pc, sp, trust, registers, exact: false };
}

/** Applies a CFI row: the CFA, the caller's registers, its PC. */
function applyRow(
  arch: Arch,
  target: UnwindTarget,
  row: CfaRow,
  regs: Map<number, bigint>,
  module: ModuleImage,
): Step {
  const is64 = arch.word === 8;
  const bits = arch.word * 8;
  const context: ExpressionContext = {
    register: (n) => regs.get(n),
    read: (address, size) => target.read(address, size),
  };
  const evaluate = (expression: Uint8Array, initial: bigint[]) =>
    evaluateExpression(expression, context, {
      is64,
      littleEndian: target.littleEndian,
      initial,
    });
  const where = `in ${module.path}`;
  let cfa: bigint;
  if (row.cfa.kind === "register") {
    const base = regs.get(row.cfa.register);
    if (base === undefined) {
      return {
        error: `the CFA's register ${row.cfa.register} is not known ${where}`,
      };
    }
    cfa = BigInt.asUintN(bits, base + row.cfa.offset);
  } else {
    cfa = evaluate(row.cfa.expression, []);
  }
  const registers = new Map(regs);
  let raUndefined = false;
  for (const [number, rule] of row.registers) {
    let value: bigint | undefined;
    switch (rule.kind) {
      case "undefined":
        registers.delete(number);
        if (number === row.returnAddressRegister) raUndefined = true;
        continue;
      case "same":
        continue;
      case "offset":
        value = target.read(BigInt.asUintN(bits, cfa + rule.offset), arch.word);
        break;
      case "val_offset":
        value = BigInt.asUintN(bits, cfa + rule.offset);
        break;
      case "register":
        value = regs.get(rule.register);
        break;
      case "expression":
        value = target.read(evaluate(rule.expression, [cfa]), arch.word);
        break;
      case "val_expression":
        value = evaluate(rule.expression, [cfa]);
        break;
    }
    if (value === undefined) {
      if (number === row.returnAddressRegister) {
        return {
          error:
            `the return address (register ${number}) is not in the kept memory ${where}`,
        };
      }
      registers.delete(number);
    } else {
      registers.set(number, value);
    }
  }
  if (raUndefined) return { end: true };
  const ra = registers.get(row.returnAddressRegister);
  if (ra === undefined) {
    return {
      error:
        `the return address (register ${row.returnAddressRegister}) is not known ${where}`,
    };
  }
  const pc = strip(ra, target);
  registers.set(arch.sp, cfa);
  if (arch.pc !== undefined) registers.set(arch.pc, pc);
  return {
    frame: { pc, sp: cfa, trust: "cfi", registers, exact: row.signalFrame },
  };
}

/** Clears pointer authentication bits from a code address. */
function strip(address: bigint, target: UnwindTarget): bigint {
  return target.codeMask === undefined ? address : address & ~target.codeMask;
}

/**
 * aarch64: at the kernel's `rt_sigreturn` trampoline (`mov x8, #139;
 * svc #0`, in the vDSO or qemu's signal page), the stack pointer is the
 * `struct rt_sigframe`: `siginfo` (128 bytes), then the `ucontext`, whose
 * `uc_mcontext` (at 176) is `fault_address`, `regs[31]`, `sp`, `pc`.
 */
function aarch64Sigreturn(
  pc: bigint,
  sp: bigint,
  target: UnwindTarget,
): Map<number, bigint> & { pc?: bigint } | undefined {
  if (
    target.read(pc, 4) !== 0xd2801168n ||
    target.read(pc + 4n, 4) !== 0xd4000001n
  ) {
    return undefined;
  }
  const context = sp + 128n + 176n + 8n;
  const registers: Map<number, bigint> & { pc?: bigint } = new Map();
  for (let i = 0; i < 31; i++) {
    const value = target.read(context + BigInt(i * 8), 8);
    if (value === undefined) return undefined;
    registers.set(i, value);
  }
  const savedSp = target.read(context + 248n, 8);
  const savedPc = target.read(context + 256n, 8);
  if (savedSp === undefined || savedPc === undefined) return undefined;
  registers.set(31, savedSp);
  registers.pc = savedPc;
  return registers;
}
