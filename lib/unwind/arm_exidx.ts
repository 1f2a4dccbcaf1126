/**
 * ARM EHABI unwind tables (`.ARM.exidx`, `.ARM.extab`), what gcc writes for
 * armhf instead of `.eh_frame`: for an address, the function's unwind
 * opcodes (inline in the index, or in the table in the compact or generic
 * model), run over a virtual stack pointer to give the caller's registers.
 *
 * @module
 */

import { ByteReader } from "../elf/mod.ts";
import { lastAtOrBelow } from "../util/mod.ts";
import { CfiFormatError } from "./errors.ts";

/** One section of an unwind table, as loaded. */
export interface ExidxSection {
  /** Its bytes. */
  bytes: Uint8Array;
  /** Its address (unrelocated). */
  address: bigint;
}

/** What the table says of a function. */
export type ExidxEntry =
  | { kind: "cantunwind" }
  | { kind: "opcodes"; opcodes: Uint8Array };

/** `EXIDX_CANTUNWIND`. */
const CANTUNWIND = 1;

/**
 * The EHABI unwind tables of one module.
 *
 * @example A function whose entry is inline: pop {r4, lr}, then finish
 * ```ts
 * import { ArmExidx, runExidx } from "./arm_exidx.ts";
 * import assert from "node:assert/strict";
 *
 * // One index entry at 0x9000 for a function at 0x1000: compact model 0,
 * // opcodes 0xa8 (pop r4, r14), 0xb0 (finish), 0xb0.
 * const bytes = new Uint8Array(8);
 * const view = new DataView(bytes.buffer);
 * view.setUint32(0, (0x1000 - 0x9000) & 0x7fffffff, true);
 * view.setUint32(4, 0x80a8b0b0, true);
 * const table = new ArmExidx({ exidx: { bytes, address: 0x9000n } }, { littleEndian: true });
 * const entry = table.find(0x1010n);
 * assert.deepEqual(entry, { kind: "opcodes", opcodes: new Uint8Array([0xa8, 0xb0, 0xb0]) });
 *
 * // The stack holds r4 and lr: the caller's pc is that lr.
 * const stack = new Map([[0x7000n, 0x44n], [0x7004n, 0x2345n]]);
 * const caller = runExidx(entry.opcodes, new Map([[13, 0x7000n], [14, 0x1111n]]), (a) => stack.get(a));
 * assert.deepEqual([caller.get(4), caller.get(13), caller.get(15)], [0x44n, 0x7008n, 0x2345n]);
 * ```
 */
export class ArmExidx {
  readonly #exidx: ExidxSection;
  readonly #extab: ExidxSection | undefined;
  readonly #r: ByteReader;
  readonly #littleEndian: boolean;

  /** Reads nothing yet: the index is searched on demand. */
  constructor(
    sections: { exidx: ExidxSection; extab?: ExidxSection },
    options: { littleEndian: boolean },
  ) {
    this.#exidx = sections.exidx;
    this.#extab = sections.extab;
    this.#littleEndian = options.littleEndian;
    this.#r = new ByteReader(sections.exidx.bytes, {
      littleEndian: options.littleEndian,
      is64: false,
    });
  }

  /**
   * The unwind entry of the function `pc` is in.
   *
   * @param pc An address of the module (unrelocated).
   * @returns The entry, or undefined when the index covers no function
   *   at or below it.
   * @throws {CfiFormatError} When an entry is malformed.
   */
  find(pc: bigint): ExidxEntry | undefined {
    const count = Math.floor(this.#exidx.bytes.length / 8);
    const found = lastAtOrBelow(count, pc, (i) => this.#start(i));
    if (found < 0) return undefined;
    const word = this.#r.u32(found * 8 + 4, ".ARM.exidx entry");
    if (word === CANTUNWIND) return { kind: "cantunwind" };
    if ((word & 0x80000000) !== 0) {
      return { kind: "opcodes", opcodes: compact(word, []) };
    }
    const address = prel31(word, this.#exidx.address + BigInt(found * 8 + 4));
    return { kind: "opcodes", opcodes: this.#table(address) };
  }

  #start(index: number): bigint {
    const word = this.#r.u32(index * 8, ".ARM.exidx function");
    return prel31(word, this.#exidx.address + BigInt(index * 8));
  }

  /** The opcodes of a `.ARM.extab` entry, compact or generic. */
  #table(address: bigint): Uint8Array {
    const extab = this.#extab;
    if (extab === undefined) {
      throw new CfiFormatError(
        `Cannot read the unwind entry at 0x${
          address.toString(16)
        }: expected a .ARM.extab section, found none`,
      );
    }
    const r = new ByteReader(extab.bytes, {
      littleEndian: this.#littleEndian,
      is64: false,
    });
    const at = Number(address - extab.address);
    if (at < 0 || at + 4 > extab.bytes.length) {
      throw new CfiFormatError(
        `Cannot read the unwind entry at 0x${
          address.toString(16)
        }: expected it inside .ARM.extab`,
      );
    }
    let word = r.u32(at, ".ARM.extab");
    if ((word & 0x80000000) === 0) {
      // The generic model: a personality routine (C++'s), then a word of
      // more words' count (bits 31-24) and three opcode bytes.
      word = r.u32(at + 4, ".ARM.extab");
      const opcodes = [(word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff];
      for (let i = 1; i <= word >>> 24; i++) {
        const w = r.u32(at + 4 + 4 * i, ".ARM.extab");
        opcodes.push(w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff);
      }
      return new Uint8Array(opcodes);
    }
    const more = ((word >>> 24) & 0xf) !== 0 ? (word >>> 16) & 0xff : 0;
    const words: number[] = [];
    for (let i = 1; i <= more; i++) words.push(r.u32(at + 4 * i, ".ARM.extab"));
    return compact(word, words);
  }
}

/** A `prel31` value: 31 bits, signed, relative to where it is. */
function prel31(word: number, place: bigint): bigint {
  const offset = BigInt((word << 1) >> 1);
  return BigInt.asUintN(32, place + offset);
}

/** The opcode bytes of a compact entry and its extra words. */
function compact(word: number, more: number[]): Uint8Array {
  const personality = (word >>> 24) & 0xf;
  const bytes: number[] = [];
  if (personality === 0) {
    bytes.push((word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff);
  } else if (personality === 1 || personality === 2) {
    bytes.push((word >>> 8) & 0xff, word & 0xff);
  } else {
    throw new CfiFormatError(
      `Cannot read an EHABI entry: expected personality 0, 1 or 2, found ${personality}`,
    );
  }
  for (const w of more) {
    bytes.push(w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff);
  }
  return new Uint8Array(bytes);
}

/**
 * Runs EHABI unwind opcodes: from the callee's registers (13 is sp, 14 lr,
 * 15 pc) to the caller's. Without a pop of pc, the caller's pc is lr.
 *
 * @param opcodes The function's opcodes.
 * @param registers The callee's registers.
 * @param read Reads a 32-bit word of the stack; undefined when not kept.
 * @returns The caller's registers.
 * @throws {CfiFormatError} For an opcode that refuses to unwind, a spare
 *   one, or a stack word that is not kept.
 */
export function runExidx(
  opcodes: Uint8Array,
  registers: Map<number, bigint>,
  read: (address: bigint) => bigint | undefined,
): Map<number, bigint> {
  const regs = new Map(registers);
  let vsp = regs.get(13);
  if (vsp === undefined) {
    throw new CfiFormatError(
      "Cannot unwind with EHABI: the stack pointer is not known",
    );
  }
  let pcPopped = false;
  const pop = (register: number) => {
    const value = read(vsp!);
    if (value === undefined) {
      throw new CfiFormatError(
        `Cannot unwind with EHABI: the stack word at 0x${
          vsp!.toString(16)
        } is not in the kept memory`,
      );
    }
    regs.set(register, value);
    if (register === 15) pcPopped = true;
    vsp = vsp! + 4n;
  };
  const skip = (bytes: number) => (vsp = vsp! + BigInt(bytes));
  let i = 0;
  const next = () => {
    if (i >= opcodes.length) {
      throw new CfiFormatError(
        "Cannot unwind with EHABI: an opcode is cut short",
      );
    }
    return opcodes[i++]!;
  };
  let popped13 = false;
  while (i < opcodes.length) {
    const op = next();
    if ((op & 0xc0) === 0x00) {
      skip(((op & 0x3f) << 2) + 4);
    } else if ((op & 0xc0) === 0x40) {
      vsp = vsp - BigInt(((op & 0x3f) << 2) + 4);
    } else if ((op & 0xf0) === 0x80) {
      const mask = ((op & 0x0f) << 8) | next();
      if (mask === 0) {
        throw new CfiFormatError(
          "Cannot unwind with EHABI: the function refuses to be unwound",
        );
      }
      for (let r = 0; r < 12; r++) {
        if (mask & (1 << r)) {
          if (r + 4 === 13) popped13 = true;
          pop(r + 4);
        }
      }
      if (popped13) vsp = regs.get(13)!;
    } else if ((op & 0xf0) === 0x90) {
      const r = op & 0x0f;
      if (r === 13 || r === 15) {
        throw new CfiFormatError(
          `Cannot unwind with EHABI: expected an opcode, found the reserved 0x${
            op.toString(16)
          }`,
        );
      }
      vsp = regs.get(r) ?? vsp;
    } else if ((op & 0xf0) === 0xa0) {
      for (let r = 4; r <= 4 + (op & 0x07); r++) pop(r);
      if (op & 0x08) pop(14);
    } else if (op === 0xb0) {
      break; // finish
    } else if (op === 0xb1) {
      const mask = next();
      if (mask === 0 || (mask & 0xf0) !== 0) {
        throw new CfiFormatError(
          `Cannot unwind with EHABI: expected a mask of r0-r3, found 0x${
            mask.toString(16)
          }`,
        );
      }
      for (let r = 0; r < 4; r++) if (mask & (1 << r)) pop(r);
    } else if (op === 0xb2) {
      let value = 0;
      let shift = 0;
      for (let b = next();; b = next()) {
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0 || shift > 28) break;
      }
      skip(0x204 + value * 4);
    } else if (op === 0xb3) {
      skip(((next() & 0x0f) + 1) * 8 + 4); // VFP, FSTMFDX
    } else if ((op & 0xf8) === 0xb8) {
      skip(((op & 0x07) + 1) * 8 + 4);
    } else if (op === 0xc6) {
      skip(((next() & 0x0f) + 1) * 8); // iWMMXt wR
    } else if (op === 0xc7) {
      const mask = next();
      for (let r = 0; r < 4; r++) if (mask & (1 << r)) skip(4);
    } else if ((op & 0xf8) === 0xc0) {
      skip(((op & 0x07) + 1) * 8);
    } else if (op === 0xc8 || op === 0xc9) {
      skip(((next() & 0x0f) + 1) * 8); // VFP, VPUSH
    } else if ((op & 0xf8) === 0xd0) {
      skip(((op & 0x07) + 1) * 8);
    } else {
      throw new CfiFormatError(
        `Cannot unwind with EHABI: expected an opcode, found the spare 0x${
          op.toString(16)
        }`,
      );
    }
  }
  regs.set(13, vsp);
  if (!pcPopped) {
    const lr = regs.get(14);
    if (lr === undefined) {
      throw new CfiFormatError(
        "Cannot unwind with EHABI: the return address (lr) is not known",
      );
    }
    regs.set(15, lr);
  }
  return regs;
}
