/**
 * MIPS functions with no call frame information (glibc builds some, such as
 * `abort`, without): the frame is read from the function's prologue, as gdb
 * does, from its first instruction up to the PC. The prologue allocates the
 * frame (`addiu sp, sp, -N`), stores the return address and the saved
 * registers into it (`sw ra, off(sp)`) and may copy the stack pointer into
 * the frame pointer (`move s8, sp`) before the body moves `sp` again.
 *
 * @module
 */

import type { CodeReader } from "./_call_site.ts";

/** Instructions read at most from a function's start. */
const MAX_INSTRUCTIONS = 256;
/** `jr ra`: the function returns; no prologue is after it. */
const JR_RA = 0x03e00008;

/** What a prologue did before the PC. */
export interface MipsFrame {
  /** Bytes the frame takes; 0 when it allocated none. */
  size: number;
  /** The register the frame is addressed from: 29 (sp), or 30 (s8). */
  base: 29 | 30;
  /** Where each saved register is, from the frame's lowest address. */
  saved: Map<number, number>;
}

/**
 * Reads the prologue of the function that starts at `start`, the
 * instructions before `pc`.
 *
 * @param start The function's first instruction.
 * @param pc Where the thread is in it (a return address, or where it stopped).
 * @param options Byte order, word size, where code is read from.
 * @returns The frame, or undefined when the code cannot be read.
 */
export async function mipsPrologue(
  start: bigint,
  pc: bigint,
  options: { littleEndian: boolean; is64: boolean; code: CodeReader },
): Promise<MipsFrame | undefined> {
  const count = Math.min(MAX_INSTRUCTIONS, Number((pc - start) / 4n));
  if (count <= 0) return { size: 0, base: 29, saved: new Map() };
  const bytes = await options.code(start, count * 4);
  if (bytes === undefined) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frame: MipsFrame = { size: 0, base: 29, saved: new Map() };
  for (let i = 0; i < count; i++) {
    const w = view.getUint32(i * 4, options.littleEndian);
    if (w === JR_RA) break;
    const op = w >>> 26;
    const rs = (w >>> 21) & 31;
    const rt = (w >>> 16) & 31;
    const immediate = (w << 16) >> 16;
    // addiu/daddiu sp, sp, -N: the frame, allocated once.
    if ((op === 0x09 || op === 0x19) && rs === 29 && rt === 29) {
      if (immediate < 0 && frame.size === 0) frame.size = -immediate;
      continue;
    }
    // sw/sd rt, off(sp): the first store of each register is its save.
    if ((op === 0x2b || (op === 0x3f && options.is64)) && rs === 29) {
      if (frame.size > 0 && !frame.saved.has(rt)) {
        frame.saved.set(rt, immediate);
      }
      continue;
    }
    // move s8, sp (or/addu/daddu s8, sp, zero): the frame's base from here.
    if (
      op === 0 && rs === 29 && rt === 0 && ((w >>> 11) & 31) === 30 &&
      [0x21, 0x25, 0x2d].includes(w & 0x3f)
    ) {
      if (frame.size > 0) frame.base = 30;
    }
  }
  return frame;
}
