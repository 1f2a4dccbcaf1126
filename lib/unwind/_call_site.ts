/**
 * Whether a word found on the stack can be a return address: the
 * instruction just before it must be a call. A stack scan asks this of
 * every word that points into code, which is how it tells a saved return
 * address from a stale pointer or bytes of a string that happen to fall in
 * a module's text.
 *
 * @module
 */

import {
  ByteReader,
  EM_386,
  EM_AARCH64,
  EM_ARM,
  EM_MIPS,
  EM_PPC,
  EM_X86_64,
} from "../elf/mod.ts";

/** Reads code bytes; undefined where they are not known. */
export type CodeReader = (
  address: bigint,
  size: number,
) => Promise<Uint8Array | undefined>;

/**
 * True when `ra` can be a return address on `machine`: aligned as the
 * machine's instructions are, and after a call instruction where the code
 * can be read (where it cannot, alignment alone decides).
 *
 * @param machine The core's `e_machine`.
 * @param ra The candidate, as the stack holds it (a Thumb one with bit 0).
 * @param options The byte order and where code is read from.
 * @returns Whether a call returns there.
 */
export async function mayReturnTo(
  machine: number,
  ra: bigint,
  options: { littleEndian: boolean; code: CodeReader | undefined },
): Promise<boolean> {
  const { littleEndian, code } = options;
  const reader = async (address: bigint, size: number) => {
    const bytes = await code?.(address, size);
    return bytes && new ByteReader(bytes, { is64: false, littleEndian });
  };
  const word = async (address: bigint) =>
    (await reader(address, 4))?.u32(0, "instruction");
  switch (machine) {
    case EM_X86_64:
    case EM_386: {
      if (ra < 7n) return false;
      const bytes = await code?.(ra - 7n, 7);
      return bytes === undefined || x86CallEndsAt(bytes);
    }
    case EM_AARCH64: {
      if (ra % 4n !== 0n) return false;
      const w = await word(ra - 4n);
      return w === undefined || aarch64Call(w);
    }
    case EM_PPC: {
      if (ra % 4n !== 0n) return false;
      const w = await word(ra - 4n);
      return w === undefined || ppcCall(w);
    }
    case EM_MIPS: {
      if (ra % 4n !== 0n) return false;
      // A call's return address is after its delay slot; a compact call
      // (release 6) has none.
      const w = await word(ra - 8n);
      const compact = await word(ra - 4n);
      if (w === undefined || compact === undefined) return true;
      return mipsCall(w) || mipsCompactCall(compact);
    }
    case EM_ARM: {
      if ((ra & 1n) !== 0n) {
        const at = ra & ~1n;
        const halves = await reader(at - 4n, 4);
        if (halves === undefined) return true;
        const high = halves.u16(0, "instruction");
        const low = halves.u16(2, "instruction");
        // Thumb-2 `bl`/`blx` (two halfwords), or `blx rm`.
        const long = (high & 0xf800) === 0xf000 && (low & 0xc000) === 0xc000;
        return long || (low & 0xff87) === 0x4780;
      }
      if (ra % 4n !== 0n) return false;
      const w = await word(ra - 4n);
      return w === undefined || armCall(w);
    }
    default:
      return true;
  }
}

/**
 * x86: some call instruction ends at the last of `bytes` (the 7 before the
 * candidate): `call rel32` (`e8`), or `call r/m` (`ff /2`), whose length
 * its ModRM byte gives (a REX or segment prefix goes before the opcode).
 */
function x86CallEndsAt(bytes: Uint8Array): boolean {
  const end = bytes.length;
  if (bytes[end - 5] === 0xe8) return true;
  for (let length = 2; length <= 7; length++) {
    const at = end - length;
    if (bytes[at] !== 0xff) continue;
    const modrm = bytes[at + 1]!;
    if (((modrm >> 3) & 7) !== 2) continue;
    if (modrmLength(modrm, bytes[at + 2]) === length) return true;
  }
  return false;
}

/** The length of `ff /r` with this ModRM (and SIB) byte. */
function modrmLength(modrm: number, sib: number | undefined): number {
  const mod = modrm >> 6;
  const rm = modrm & 7;
  if (mod === 3) return 2;
  let length = 2;
  if (rm === 4) {
    length += 1;
    if (mod === 0 && sib !== undefined && (sib & 7) === 5) length += 4;
  }
  if (mod === 0 && rm === 5) length += 4;
  if (mod === 1) length += 1;
  if (mod === 2) length += 4;
  return length;
}

/** `bl`, `blr`, or `blraa`/`blrab`/`blraaz`/`blrabz`. */
function aarch64Call(w: number): boolean {
  return (w & 0xfc000000) >>> 0 === 0x94000000 ||
    (w & 0xfffffc1f) >>> 0 === 0xd63f0000 ||
    (w & 0xfefff800) >>> 0 === 0xd63f0800;
}

/** `bl`/`bla`, `bcl`, or `bclrl`/`bcctrl`/`bctarl`. */
function ppcCall(w: number): boolean {
  const op = w >>> 26;
  if ((op === 18 || op === 16) && (w & 1) === 1) return true;
  if (op !== 19 || (w & 1) !== 1) return false;
  const xo = (w >>> 1) & 0x3ff;
  return xo === 16 || xo === 528 || xo === 560;
}

/** `jal`, `jalx`, `jalr`, or `bltzal`/`bgezal` and their "likely" forms. */
function mipsCall(w: number): boolean {
  const op = w >>> 26;
  if (op === 3 || op === 0x1d) return true;
  if (op === 0) return (w & 0x3f) === 9;
  if (op === 1) return ((w >>> 16) & 0x1c) === 0x10;
  return false;
}

/** Release 6's `balc`, and `jialc` (`pop76` with rs = 0). */
function mipsCompactCall(w: number): boolean {
  const op = w >>> 26;
  return op === 0x3a || (op === 0x3e && ((w >>> 21) & 31) === 0);
}

/** ARM: `bl`, `blx` (immediate), or `blx rm`. */
function armCall(w: number): boolean {
  const condition = w >>> 28;
  if ((w & 0x0f000000) === 0x0b000000 && condition !== 0xf) return true;
  if ((w & 0xfe000000) >>> 0 === 0xfa000000) return true;
  return (w & 0x0ffffff0) === 0x012fff30 && condition !== 0xf;
}
