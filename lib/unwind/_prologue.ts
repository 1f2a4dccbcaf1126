/**
 * Functions with no unwind information at all (glibc builds some, such as
 * `abort` on MIPS and ARM, without): the frame is read from the function's
 * prologue, as gdb does, from its first instruction up to the PC. A
 * prologue allocates the frame, stores the return address and the saved
 * registers into it, and may point a frame pointer at it.
 *
 * @module
 */

import { ByteReader } from "../elf/mod.ts";
import type { CodeReader } from "./_call_site.ts";

/**
 * A frame as a prologue set it up: the CFA (the stack pointer at the
 * function's entry) is `base + offset`, and each saved register is at the
 * CFA plus its offset.
 */
export interface PrologueFrame {
  /** The DWARF number of the register the CFA is computed from. */
  base: number;
  /** Added to `base` to give the CFA. */
  offset: number;
  /** Where each saved register is, from the CFA. */
  saved: Map<number, number>;
}

/** Options of the prologue readers. */
export interface PrologueOptions {
  littleEndian: boolean;
  code: CodeReader;
}

/** Bytes of a prologue read at most from a function's start. */
const MAX_PROLOGUE = 1024;

/** Reads the code from `start` to `pc`, at most {@linkcode MAX_PROLOGUE}. */
async function prologueCode(
  start: bigint,
  pc: bigint,
  options: PrologueOptions,
): Promise<ByteReader | undefined> {
  const distance = pc - start;
  const length = Number(
    distance > BigInt(MAX_PROLOGUE) ? MAX_PROLOGUE : distance,
  ) & ~1;
  const bytes = length <= 0
    ? new Uint8Array(0)
    : await options.code(start, length);
  return bytes &&
    new ByteReader(bytes, { is64: false, littleEndian: options.littleEndian });
}

/** `jr ra`: the function returns; no prologue is after it. */
const JR_RA = 0x03e00008;

/**
 * MIPS: `addiu`/`daddiu sp, sp, -N` allocates the frame (beyond 32 KiB,
 * the rest by `subu sp, sp, rX` of a constant built by `lui`/`ori`/`li`),
 * `sw`/`sd` into it save registers, `move s8, sp` makes s8 its base. Any
 * other write to sp makes the frame unknown, unless s8 is its base by then.
 *
 * @param start The function's first instruction.
 * @param pc Where the thread is in it.
 * @param options Byte order, word size, where code is read from.
 * @returns The frame; undefined when the code cannot be read, the
 *   function allocated none (a leaf: its caller is in `ra`) or it moved sp
 *   in a way not followed.
 */
export async function mipsPrologue(
  start: bigint,
  pc: bigint,
  options: PrologueOptions & { is64: boolean },
): Promise<PrologueFrame | undefined> {
  const code = await prologueCode(start, pc, options);
  if (code === undefined) return undefined;
  /** Bytes below the CFA that sp is, so far. */
  let size = 0;
  let base: { register: number; offset: number } = { register: 29, offset: 0 };
  const saved = new Map<number, number>();
  /** Registers that hold a constant the prologue built. */
  const constants = new Map<number, number>();
  const frame = (): PrologueFrame | undefined =>
    size === 0 ? undefined : {
      base: base.register,
      offset: base.register === 29 ? size : base.offset,
      saved,
    };
  // Past the frame pointer's setting, sp may move (alloca): s8 holds.
  const unknownSp = () => base.register === 30 ? frame() : undefined;
  for (let at = 0; at + 4 <= code.length; at += 4) {
    const w = code.u32(at, "instruction");
    if (w === JR_RA) break;
    const op = w >>> 26;
    const rs = (w >>> 21) & 31;
    const rt = (w >>> 16) & 31;
    const rd = (w >>> 11) & 31;
    const funct = w & 0x3f;
    const immediate = (w << 16) >> 16;
    if ((op === 0x09 || op === 0x19) && rs === 29 && rt === 29) {
      // addiu/daddiu sp, sp, -N
      if (immediate > 0) return unknownSp();
      size -= immediate;
    } else if ((op === 0x2b || (op === 0x3f && options.is64)) && rs === 29) {
      // sw/sd rt, off(sp): the first store of each register is its save.
      if (size > 0 && !saved.has(rt)) saved.set(rt, immediate - size);
    } else if (
      op === 0 && rs === 29 && rd === 29 && (funct === 0x23 || funct === 0x2f)
    ) {
      // subu/dsubu sp, sp, rX
      const value = constants.get(rt);
      if (value === undefined) return unknownSp();
      size += value;
    } else if (
      op === 0 && rs === 29 && rt === 0 && rd === 30 &&
      [0x21, 0x25, 0x2d].includes(funct)
    ) {
      if (size > 0) base = { register: 30, offset: size }; // move s8, sp
    } else if (op === 0x0f) {
      constants.set(rt, (immediate & 0xffff) * 0x10000); // lui
    } else if (op === 0x0d) {
      // ori rt, rs, imm (rs zero or a constant)
      const high = rs === 0 ? 0 : constants.get(rs);
      if (high === undefined) constants.delete(rt);
      else constants.set(rt, high + (immediate & 0xffff));
    } else if ((op === 0x09 || op === 0x19) && rs === 0) {
      constants.set(rt, immediate); // li (addiu rt, zero, imm)
    } else if (
      (op === 0 && rd === 29) || (op !== 0 && op !== 0x2b && op !== 0x3f &&
        op !== 0x23 && op !== 0x37 && rt === 29)
    ) {
      return unknownSp(); // sp written some other way
    }
  }
  return frame();
}

/**
 * ARM and Thumb (bit 0 of `start` set): `push`/`stmdb sp!` and `str rN,
 * [sp, #-4]!` save registers, `sub sp` and `vpush` grow the frame, `add r7,
 * sp` (Thumb) or `add fp, sp` (ARM) make the frame pointer its base; the
 * prologue ends at the first branch.
 *
 * @param start The function's first instruction (odd for Thumb).
 * @param pc Where the thread is in it.
 * @param options Byte order, where code is read from.
 * @returns The frame; undefined when the code cannot be read or the
 *   function allocated none (a leaf: its caller is in `lr`).
 */
export async function armPrologue(
  start: bigint,
  pc: bigint,
  options: PrologueOptions,
): Promise<PrologueFrame | undefined> {
  const thumb = (start & 1n) === 1n;
  const first = start & ~1n;
  const code = await prologueCode(first, pc & ~1n, options);
  if (code === undefined) return undefined;
  const state = new ArmFrame();
  if (thumb) {
    for (let at = 0; at + 2 <= code.length;) {
      const h = code.u16(at, "instruction");
      const wide = (h & 0xe000) === 0xe000 && (h & 0x1800) !== 0;
      if (wide) {
        if (at + 4 > code.length) break;
        if (!state.thumb32(h, code.u16(at + 2, "instruction"))) break;
        at += 4;
      } else {
        if (!state.thumb16(h)) break;
        at += 2;
      }
    }
  } else {
    for (let at = 0; at + 4 <= code.length; at += 4) {
      if (!state.arm(code.u32(at, "instruction"))) break;
    }
  }
  return state.frame();
}

/** The stack as an ARM prologue leaves it, relative to the CFA. */
class ArmFrame {
  /** The stack pointer, from the CFA: 0 at entry, then negative. */
  #sp = 0;
  /** The frame pointer's register and where it points, once set. */
  #fp: { register: number; at: number } | undefined;
  readonly #saved = new Map<number, number>();

  /** Registers stored at the stack pointer, lowest register lowest. */
  #push(registers: number): void {
    const list: number[] = [];
    for (let r = 0; r < 16; r++) if ((registers & (1 << r)) !== 0) list.push(r);
    this.#sp -= 4 * list.length;
    for (const [i, r] of list.entries()) {
      if (!this.#saved.has(r)) this.#saved.set(r, this.#sp + 4 * i);
    }
  }

  /** One 16-bit Thumb instruction; false when the prologue is over. */
  thumb16(h: number): boolean {
    if ((h & 0xfe00) === 0xb400) {
      this.#push((h & 0xff) | ((h & 0x100) !== 0 ? 1 << 14 : 0));
    } else if ((h & 0xff80) === 0xb080) {
      this.#sp -= (h & 0x7f) * 4; // sub sp, #imm
    } else if ((h & 0xff00) === 0xaf00) {
      this.#fp = { register: 7, at: this.#sp + (h & 0xff) * 4 }; // add r7, sp, #imm
    } else if (h === 0x466f) {
      this.#fp = { register: 7, at: this.#sp }; // mov r7, sp
    } else if (
      (h & 0xf000) === 0xd000 || (h & 0xf800) === 0xe000 ||
      (h & 0xf500) === 0xb100 || (h & 0xff00) === 0x4700 ||
      (h & 0xfe00) === 0xbc00
    ) {
      return false; // b<cond>, b, cbz/cbnz, bx/blx, pop
    }
    return true;
  }

  /** One 32-bit Thumb instruction; false when the prologue is over. */
  thumb32(h1: number, h2: number): boolean {
    if (h1 === 0xe92d) {
      this.#push(h2 & 0x5fff); // push.w / stmdb sp!
    } else if (h1 === 0xf84d && (h2 & 0x0fff) === 0x0d04) {
      this.#push(1 << (h2 >>> 12)); // str.w rN, [sp, #-4]!
    } else if ((h1 & 0xfbff) === 0xf1ad && (h2 & 0x8f00) === 0x0d00) {
      // sub.w sp, sp, #const
      this.#sp -= thumbExpandImmediate(
        ((h1 >> 10) & 1) << 11 | ((h2 >> 12) & 7) << 8 | (h2 & 0xff),
      );
    } else if ((h1 & 0xfbff) === 0xf2ad && (h2 & 0x8f00) === 0x0d00) {
      // subw sp, sp, #imm12
      this.#sp -= ((h1 >> 10) & 1) << 11 | ((h2 >> 12) & 7) << 8 | (h2 & 0xff);
    } else if ((h1 & 0xffbf) === 0xed2d && (h2 & 0x0e00) === 0x0a00) {
      this.#sp -= (h2 & 0xff) * 4; // vpush
    } else if ((h1 & 0xf800) === 0xf000 && (h2 & 0x8000) === 0x8000) {
      return false; // branches and calls
    }
    return true;
  }

  /** One ARM instruction; false when the prologue is over. */
  arm(w: number): boolean {
    if ((w & 0xffff0000) >>> 0 === 0xe92d0000) {
      this.#push(w & 0xffff); // push / stmdb sp!
    } else if ((w & 0xffff0fff) >>> 0 === 0xe52d0004) {
      this.#push(1 << ((w >>> 12) & 15)); // str rN, [sp, #-4]!
    } else if ((w & 0xfffff000) >>> 0 === 0xe24dd000) {
      this.#sp -= armImmediate(w & 0xfff); // sub sp, sp, #imm
    } else if ((w & 0xfffff000) >>> 0 === 0xe28db000) {
      this.#fp = { register: 11, at: this.#sp + armImmediate(w & 0xfff) };
    } else if ((w & 0xffbf0e00) >>> 0 === 0xed2d0a00) {
      this.#sp -= (w & 0xff) * 4; // vpush
    } else if (
      (w & 0x0e000000) === 0x0a000000 || (w & 0x0ffffff0) === 0x012fff10 ||
      (w & 0x0ffffff0) === 0x012fff30
    ) {
      return false; // b, bl, bx, blx
    }
    return true;
  }

  /** The frame: from the frame pointer where one was set, else sp. */
  frame(): PrologueFrame | undefined {
    if (this.#sp === 0) return undefined;
    return {
      base: this.#fp?.register ?? 13,
      offset: -(this.#fp?.at ?? this.#sp),
      saved: this.#saved,
    };
  }
}

/** ARM's modified immediate: 8 bits rotated right by twice 4 bits. */
function armImmediate(field: number): number {
  const value = field & 0xff;
  const rotation = ((field >> 8) & 15) * 2;
  return ((value >>> rotation) | (value << (32 - rotation))) >>> 0;
}

/** Thumb-2's modified immediate (ThumbExpandImm) of its 12 bits. */
function thumbExpandImmediate(field: number): number {
  const low = field & 0xff;
  if ((field >> 10) === 0) {
    switch ((field >> 8) & 3) {
      case 0:
        return low;
      case 1:
        return (low << 16 | low) >>> 0;
      case 2:
        return (low << 24 | low << 8) >>> 0;
      default:
        return (low << 24 | low << 16 | low << 8 | low) >>> 0;
    }
  }
  const unrotated = 0x80 | (field & 0x7f);
  const rotation = field >> 7;
  return ((unrotated >>> rotation) | (unrotated << (32 - rotation))) >>> 0;
}
