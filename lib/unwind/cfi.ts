/**
 * DWARF call frame information: `.eh_frame` (found through
 * `.eh_frame_hdr`'s sorted table when there is one) and `.debug_frame`.
 * For an address, it finds the frame description entry and runs its CIE's
 * and its own instructions up to that address, giving the row of rules: how
 * to compute the canonical frame address and where each register of the
 * caller was saved.
 *
 * The bytes are hostile input: every read is bounds-checked, lengths and
 * counts are bounded, and anything malformed throws {@linkcode CfiFormatError}.
 *
 * @module
 */

import { ByteReader, ElfFormatError } from "../elf/mod.ts";
import { lastAtOrBelow } from "../util/mod.ts";
import { Cursor, DW_EH_PE_omit, type PointerBases } from "./_cursor.ts";
import { CfiFormatError } from "./errors.ts";

/** One section of call frame information, as loaded. */
export interface CfiSection {
  /** The section's bytes. */
  bytes: Uint8Array;
  /** Its address (`sh_addr`, unrelocated), for pc-relative pointers. */
  address: bigint;
}

/** The sections of one module, and the bases their pointers may use. */
export interface CfiSections {
  /** `.eh_frame`. */
  ehFrame?: CfiSection;
  /** `.eh_frame_hdr`: its table finds `.eh_frame`'s entries by address. */
  ehFrameHdr?: CfiSection;
  /** `.debug_frame`. */
  debugFrame?: CfiSection;
  /** Address of `.text`, for `DW_EH_PE_textrel`. */
  text?: bigint;
  /** Address of `.got`, for `DW_EH_PE_datarel` in `.eh_frame`. */
  got?: bigint;
}

/** Options for {@linkcode CallFrameInfo}. */
export interface CallFrameInfoOptions {
  /** True for 64-bit targets. */
  is64: boolean;
  /** Byte order. */
  littleEndian: boolean;
  /** What the sections belong to, for messages: a module's path. */
  where: string;
  /**
   * Stop indexing a section without a sorted table when
   * `performance.now()` passes this.
   *
   * @default {Infinity}
   */
  deadline?: number;
}

/** How to find the canonical frame address. */
export type CfaRule =
  | { kind: "register"; register: number; offset: bigint }
  | { kind: "expression"; expression: Uint8Array };

/** Where a register of the caller is, relative to the CFA. */
export type RegisterRule =
  | { kind: "undefined" }
  | { kind: "same" }
  | { kind: "offset"; offset: bigint }
  | { kind: "val_offset"; offset: bigint }
  | { kind: "register"; register: number }
  | { kind: "expression"; expression: Uint8Array }
  | { kind: "val_expression"; expression: Uint8Array };

/** The rules at one address. */
export interface CfaRow {
  /** The CFA's rule. */
  cfa: CfaRule;
  /** Each register with a rule; a register without one keeps its value. */
  registers: Map<number, RegisterRule>;
  /** The column of the return address. */
  returnAddressRegister: number;
  /** True for a signal frame (`S` augmentation): its PC is not a return address. */
  signalFrame: boolean;
  /** aarch64: the return address is signed (`DW_CFA_AARCH64_negate_ra_state`). */
  raSigned: boolean;
  /** The range of addresses the entry covers. */
  start: bigint;
  /** The first address after it. */
  end: bigint;
}

interface Cie {
  codeAlign: bigint;
  dataAlign: bigint;
  returnAddressRegister: number;
  fdeEncoding: number;
  augmented: boolean;
  signalFrame: boolean;
  instructions: Cursor;
}

interface Fde {
  cie: Cie;
  start: bigint;
  end: bigint;
  instructions: Cursor;
}

interface IndexEntry {
  start: bigint;
  end: bigint;
  offset: number;
}

/** Entries indexed at most per section, when there is no sorted table. */
const MAX_ENTRIES = 1 << 20;
/** Deepest `DW_CFA_remember_state` nesting. */
const MAX_REMEMBERED = 64;
/** Highest register number a rule may name. */
const MAX_REGISTER = 4096;

interface State {
  cfa?: CfaRule | undefined;
  registers: Map<number, RegisterRule>;
  raSigned: boolean;
}

/**
 * The call frame information of one module.
 *
 * @example The rules gcc emits for a function that pushes rbp (x86_64)
 * ```ts
 * import { CallFrameInfo } from "./cfi.ts";
 * import assert from "node:assert/strict";
 *
 * // A CIE (code align 1, data align -8, return address column 16,
 * // augmentation "zR" with pcrel|sdata4 pointers; CFA = rsp + 8, rip at
 * // CFA - 8), and an FDE for 0x1000..0x1010: after 1 byte CFA = rsp + 16,
 * // rbp at CFA - 16; after 3 more, CFA = rbp + 16.
 * const eh = new Uint8Array([
 *   0x14, 0, 0, 0, 0, 0, 0, 0, 1, 0x7a, 0x52, 0, 1, 0x78, 0x10, 1, 0x1b,
 *   0x0c, 7, 8, 0x90, 1, 0, 0,
 *   0x18, 0, 0, 0, 0x1c, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0,
 *   0x41, 0x0e, 0x10, 0x86, 2, 0x43, 0x0d, 6, 0, 0, 0,
 * ]);
 * // The FDE's pc_begin is pc-relative: section address + 32 + value.
 * new DataView(eh.buffer).setInt32(32, 0x1000 - (0x400 + 32), true);
 * const cfi = new CallFrameInfo({ ehFrame: { bytes: eh, address: 0x400n } }, {
 *   is64: true,
 *   littleEndian: true,
 *   where: "example",
 * });
 * assert.deepEqual(cfi.row(0x1000n)?.cfa, { kind: "register", register: 7, offset: 8n });
 * assert.deepEqual(cfi.row(0x1002n)?.registers.get(6), { kind: "offset", offset: -16n });
 * assert.deepEqual(cfi.row(0x100fn)?.cfa, { kind: "register", register: 6, offset: 16n });
 * assert.equal(cfi.row(0x1010n), undefined);
 * ```
 */
export class CallFrameInfo {
  readonly #sections: CfiSections;
  readonly #options: CallFrameInfoOptions;
  #indexes = new Map<"eh" | "debug", IndexEntry[]>();
  #cies = new Map<string, Cie>();
  #badHeader = false;

  /** Reads nothing yet: entries are found and parsed on demand. */
  constructor(sections: CfiSections, options: CallFrameInfoOptions) {
    this.#sections = sections;
    this.#options = options;
  }

  /**
   * The rules at `pc` (an address in the module's own address space, not
   * relocated).
   *
   * @param pc The address.
   * @returns The row, or undefined when no entry covers the address.
   * @throws {CfiFormatError} When the information is malformed.
   */
  row(pc: bigint): CfaRow | undefined {
    const fde = this.#find(pc);
    if (fde === undefined) return undefined;
    return execute(fde, pc);
  }

  #find(pc: bigint): Fde | undefined {
    const { ehFrame, debugFrame } = this.#sections;
    if (ehFrame !== undefined) {
      const fde = this.#headerFde(pc) ?? this.#fromIndex(pc, "eh");
      if (fde !== undefined) return fde;
    }
    if (debugFrame !== undefined) return this.#fromIndex(pc, "debug");
    return undefined;
  }

  /** The header's answer; a header that is not usable leaves it to a scan. */
  #headerFde(pc: bigint): Fde | undefined {
    if (this.#badHeader) return undefined;
    try {
      return this.#fromHeader(pc);
    } catch (error) {
      if (
        !(error instanceof CfiFormatError || error instanceof ElfFormatError)
      ) {
        throw error;
      }
      this.#badHeader = true;
      return undefined;
    }
  }

  /** Binary search of `.eh_frame_hdr`'s table, when it has a usable one. */
  #fromHeader(pc: bigint): Fde | undefined {
    const { ehFrameHdr, ehFrame } = this.#sections;
    if (ehFrameHdr === undefined || ehFrame === undefined) return undefined;
    const c = this.#cursor(ehFrameHdr, ".eh_frame_hdr");
    const version = c.u8("version");
    if (version !== 1) {
      throw c.error(`expected version 1, found ${version}`, 0);
    }
    const pointerEncoding = c.u8("eh_frame_ptr_enc");
    const countEncoding = c.u8("fde_count_enc");
    const tableEncoding = c.u8("table_enc");
    const bases = { data: ehFrameHdr.address };
    c.pointer(pointerEncoding, "eh_frame_ptr", bases);
    if (countEncoding === DW_EH_PE_omit || tableEncoding === DW_EH_PE_omit) {
      return undefined;
    }
    const count = c.pointer(countEncoding, "fde_count", bases)!;
    const size = FIXED_SIZES[tableEncoding & 0x0f];
    if (size === undefined) return undefined; // Not searchable: scan instead.
    const tableAt = c.at;
    if (count > BigInt(Math.floor((c.length - tableAt) / (2 * size)))) {
      throw c.error(
        `fde_count ${count}: expected at most the ${
          Math.floor((c.length - tableAt) / (2 * size))
        } entries the table has room for`,
        4,
      );
    }
    const found = lastAtOrBelow(Number(count), pc, (i) => {
      c.at = tableAt + i * 2 * size;
      return c.pointer(tableEncoding, "initial_loc", bases)!;
    });
    if (found < 0) return undefined;
    c.at = tableAt + found * 2 * size + size;
    const address = c.pointer(tableEncoding, "fde address", bases)!;
    const offset = address - ehFrame.address;
    if (offset < 0n || offset >= BigInt(ehFrame.bytes.length)) {
      throw c.error(
        `an FDE address 0x${address.toString(16)} outside .eh_frame`,
      );
    }
    const fde = this.#entry("eh", Number(offset));
    if (fde === undefined || pc < fde.start || pc >= fde.end) return undefined;
    return fde;
  }

  #fromIndex(pc: bigint, kind: "eh" | "debug"): Fde | undefined {
    let index = this.#indexes.get(kind);
    if (index === undefined) {
      index = this.#index(kind);
      this.#indexes.set(kind, index);
    }
    const found =
      index[lastAtOrBelow(index.length, pc, (i) => index[i]!.start)];
    if (found === undefined || pc >= found.end) return undefined;
    return this.#entry(kind, found.offset);
  }

  /** Every FDE of a section, sorted by start address. */
  #index(kind: "eh" | "debug"): IndexEntry[] {
    const section = this.#section(kind);
    const entries: IndexEntry[] = [];
    let offset = 0;
    while (offset < section.bytes.length) {
      if (
        entries.length % 4096 === 4095 &&
        performance.now() > (this.#options.deadline ?? Infinity)
      ) {
        throw new CfiFormatError(
          `Cannot index the call frame information of ${this.#options.where}: stopped at the time limit after ${entries.length} entries`,
        );
      }
      if (entries.length >= MAX_ENTRIES) {
        throw new CfiFormatError(
          `Cannot index the call frame information of ${this.#options.where}: more than ${MAX_ENTRIES} entries`,
        );
      }
      const c = this.#cursor(section, sectionName(kind));
      c.at = offset;
      const { length, next } = entryLength(c);
      if (length === 0) {
        if (kind === "eh") break; // The terminator.
        offset = next;
        continue;
      }
      const fde = this.#entry(kind, offset);
      if (fde !== undefined && fde.end > fde.start) {
        entries.push({ start: fde.start, end: fde.end, offset });
      }
      offset = next;
    }
    return entries.sort((a, b) =>
      a.start < b.start ? -1 : a.start > b.start ? 1 : 0
    );
  }

  #section(kind: "eh" | "debug"): CfiSection {
    return (kind === "eh"
      ? this.#sections.ehFrame
      : this.#sections.debugFrame)!;
  }

  #cursor(section: CfiSection, name: string): Cursor {
    const reader = new ByteReader(section.bytes, {
      is64: this.#options.is64,
      littleEndian: this.#options.littleEndian,
    });
    return new Cursor(
      reader,
      section.address,
      `${name} of ${this.#options.where}`,
    );
  }

  /**
   * The entry at `offset`: its CIE id (or CIE pointer) and a cursor over
   * the rest of it; undefined for the terminator.
   */
  #header(kind: "eh" | "debug", offset: number, what: string) {
    const c = this.#cursor(this.#section(kind), sectionName(kind));
    c.at = offset;
    const { length, next, wide } = entryLength(c);
    if (length === 0) return undefined;
    // With a 64-bit length the CIE pointer is read as 8 bytes, as gdb and
    // readelf read it (the LSB says 4); no compiler emits such entries.
    const body = c.sub(next - c.at, what);
    const idAt = body.at;
    const id = wide ? body.u64("CIE id") : BigInt(body.u32("CIE id"));
    const cieId = kind === "eh" ? 0n : wide ? 0xffffffffffffffffn : 0xffffffffn;
    return { body, id, idAt, wide, isCie: id === cieId };
  }

  /** The FDE at `offset`; undefined for a CIE or the terminator. */
  #entry(kind: "eh" | "debug", offset: number): Fde | undefined {
    const header = this.#header(kind, offset, "entry");
    if (header === undefined || header.isCie) return undefined;
    const { body, id, idAt, wide } = header;
    const section = this.#section(kind);
    const cieOffset = kind === "eh"
      ? offset + (wide ? 12 : 4) + idAt - Number(id)
      : Number(id);
    if (
      cieOffset < 0 || cieOffset >= section.bytes.length || cieOffset === offset
    ) {
      throw body.error(
        `expected the CIE pointer to lead to a CIE inside the section, found ${id}`,
        idAt,
      );
    }
    const cie = this.#cie(kind, cieOffset);
    const bases: PointerBases = {
      text: this.#sections.text,
      data: kind === "eh" ? this.#sections.got : undefined,
    };
    const start = body.pointer(cie.fdeEncoding, "pc_begin", bases)!;
    const range = body.pointer(cie.fdeEncoding & 0x0f, "pc_range")!;
    if (cie.augmented) {
      const skip = body.ulebNumber("augmentation length");
      body.bytes(skip, "augmentation data");
    }
    const end = BigInt.asUintN(this.#options.is64 ? 64 : 32, start + range);
    return {
      cie,
      start,
      end: end < start ? start : end,
      instructions: body.sub(body.length - body.at, "instructions"),
    };
  }

  #cie(kind: "eh" | "debug", offset: number): Cie {
    const key = `${kind}:${offset}`;
    const known = this.#cies.get(key);
    if (known !== undefined) return known;
    const header = this.#header(kind, offset, "CIE");
    if (header === undefined) {
      throw this.#cursor(this.#section(kind), sectionName(kind)).error(
        "expected a CIE, found the terminator",
        offset,
      );
    }
    const { body, id } = header;
    if (!header.isCie) {
      throw body.error(`expected a CIE, found an FDE (id ${id})`, 0);
    }
    const version = body.u8("CIE version");
    if (version !== 1 && version !== 3 && version !== 4) {
      throw body.error(`expected CIE version 1, 3 or 4, found ${version}`);
    }
    let augmentation = "";
    for (;;) {
      const byte = body.u8("augmentation");
      if (byte === 0) break;
      if (augmentation.length >= 16) {
        throw body.error(
          "expected an augmentation string of a few letters, found a longer one",
        );
      }
      augmentation += String.fromCharCode(byte);
    }
    if (augmentation.includes("eh")) body.word("eh data");
    if (version === 4) {
      const addressSize = body.u8("address_size");
      body.u8("segment_selector_size");
      if (addressSize !== (this.#options.is64 ? 8 : 4)) {
        throw body.error(
          `expected address size ${
            this.#options.is64 ? 8 : 4
          }, found ${addressSize}`,
        );
      }
    }
    const codeAlign = body.uleb("code_alignment_factor");
    const dataAlign = body.sleb("data_alignment_factor");
    const returnAddressRegister = version === 1
      ? body.u8("return_address_register")
      : body.ulebNumber("return_address_register");
    if (returnAddressRegister > MAX_REGISTER) {
      throw body.error(
        `expected a return address register of at most ${MAX_REGISTER}, found ${returnAddressRegister}`,
      );
    }
    const cie: Cie = {
      codeAlign,
      dataAlign,
      returnAddressRegister,
      fdeEncoding: 0, // DW_EH_PE_absptr
      augmented: augmentation.startsWith("z"),
      signalFrame: false,
      instructions: body,
    };
    if (cie.augmented) {
      const data = body.sub(
        body.ulebNumber("augmentation length"),
        "augmentation data",
      );
      for (const letter of augmentation.slice(1)) {
        if (letter === "R") cie.fdeEncoding = data.u8("FDE pointer encoding");
        else if (letter === "L") data.u8("LSDA encoding");
        else if (letter === "P") {
          const encoding = data.u8("personality encoding");
          data.pointer(encoding & 0x7f, "personality", {
            text: this.#sections.text,
            data: this.#sections.got,
          });
        } else if (letter === "S") cie.signalFrame = true;
        else if (letter !== "B" && letter !== "G") break; // Unknown: the length skips it.
      }
    }
    cie.instructions = body.sub(body.length - body.at, "initial instructions");
    this.#cies.set(key, cie);
    return cie;
  }
}

/** Byte sizes of the fixed-size pointer formats. */
const FIXED_SIZES: Record<number, number> = {
  0x02: 2,
  0x03: 4,
  0x04: 8,
  0x0a: 2,
  0x0b: 4,
  0x0c: 8,
};

/** An entry's length field: the length, where the next entry starts. */
/** The section a kind of CFI is in. */
function sectionName(kind: "eh" | "debug"): string {
  return kind === "eh" ? ".eh_frame" : ".debug_frame";
}

function entryLength(
  c: Cursor,
): { length: number; next: number; wide: boolean } {
  const start = c.at;
  let length = c.u32("length");
  let wide = false;
  if (length === 0xffffffff) {
    const long = c.u64("64-bit length");
    if (long > BigInt(c.length)) {
      throw c.error(
        `an entry of ${long} bytes, expected at most the section's ${c.length}`,
        start,
      );
    }
    length = Number(long);
    wide = true;
  }
  const next = c.at + length;
  if (next > c.length) {
    throw c.error(
      `an entry of ${length} bytes, past the section's end (${
        c.length - c.at
      } bytes left)`,
      start,
    );
  }
  return { length, next, wide };
}

/** Runs the CIE's and the FDE's instructions up to `pc`. */
function execute(fde: Fde, pc: bigint): CfaRow {
  const { cie } = fde;
  const state: State = { registers: new Map(), raSigned: false };
  run(cie.instructions.fresh(), undefined);
  const initial = new Map(state.registers);
  run(fde.instructions.fresh(), initial);
  if (state.cfa === undefined) {
    throw fde.instructions.error(
      `no rule for the CFA at 0x${
        pc.toString(16)
      }, expected DW_CFA_def_cfa before it`,
      0,
    );
  }
  return {
    cfa: state.cfa,
    registers: state.registers,
    returnAddressRegister: cie.returnAddressRegister,
    signalFrame: cie.signalFrame,
    raSigned: state.raSigned,
    start: fde.start,
    end: fde.end,
  };

  function run(
    c: Cursor,
    initial: Map<number, RegisterRule> | undefined,
  ): void {
    let location = fde.start;
    const remembered: State[] = [];
    const advance = (delta: bigint): boolean => {
      location += delta * cie.codeAlign;
      return initial !== undefined && location > pc;
    };
    const reg = (value: number | bigint, at: number) => {
      const number = Number(value);
      if (number > MAX_REGISTER) {
        throw c.error(
          `expected a register number of at most ${MAX_REGISTER}, found ${value}`,
          at,
        );
      }
      return number;
    };
    const set = (register: number, rule: RegisterRule) =>
      state.registers.set(register, rule);
    // An instruction's operands: a register, a factored offset, a block.
    let at = 0;
    const register = () => reg(c.uleb("register"), at);
    const factored = (signed: boolean) =>
      (signed ? c.sleb("offset") : c.uleb("offset")) * cie.dataAlign;
    const block = (name: string) => c.bytes(c.ulebNumber("length"), name);
    const cfaRegister = (at: number) => {
      if (state.cfa?.kind !== "register") {
        throw c.error(
          "expected a CFA defined by a register, found an expression or none",
          at,
        );
      }
      return state.cfa;
    };
    while (!c.done) {
      at = c.at;
      const op = c.u8("CFA instruction");
      const low = op & 0x3f;
      switch (op & 0xc0) {
        case 0x40: // DW_CFA_advance_loc
          if (advance(BigInt(low))) return;
          continue;
        case 0x80: // DW_CFA_offset
          set(reg(low, at), { kind: "offset", offset: factored(false) });
          continue;
        case 0xc0: // DW_CFA_restore
          restore(reg(low, at));
          continue;
      }
      switch (op) {
        case 0x00: // DW_CFA_nop
          break;
        case 0x01: { // DW_CFA_set_loc
          const target = c.pointer(cie.fdeEncoding, "DW_CFA_set_loc")!;
          if (target < location) {
            throw c.error(
              `DW_CFA_set_loc: expected a location at or after 0x${
                location.toString(16)
              }, found 0x${target.toString(16)}`,
              at,
            );
          }
          location = target;
          if (initial !== undefined && location > pc) return;
          break;
        }
        case 0x02:
          if (advance(BigInt(c.u8("DW_CFA_advance_loc1")))) return;
          break;
        case 0x03:
          if (advance(BigInt(c.u16("DW_CFA_advance_loc2")))) return;
          break;
        case 0x04:
          if (advance(BigInt(c.u32("DW_CFA_advance_loc4")))) return;
          break;
        case 0x05: // DW_CFA_offset_extended
          set(register(), { kind: "offset", offset: factored(false) });
          break;
        case 0x06:
          restore(register());
          break;
        case 0x07:
          set(register(), { kind: "undefined" });
          break;
        case 0x08:
          set(register(), { kind: "same" });
          break;
        case 0x09:
          set(register(), { kind: "register", register: register() });
          break;
        case 0x0a: // DW_CFA_remember_state
          if (remembered.length >= MAX_REMEMBERED) {
            throw c.error(
              `expected at most ${MAX_REMEMBERED} nested DW_CFA_remember_state, found more`,
              at,
            );
          }
          remembered.push({
            cfa: state.cfa,
            registers: new Map(state.registers),
            raSigned: state.raSigned,
          });
          break;
        case 0x0b: { // DW_CFA_restore_state
          const saved = remembered.pop();
          if (saved === undefined) {
            throw c.error(
              "DW_CFA_restore_state without a DW_CFA_remember_state",
              at,
            );
          }
          state.cfa = saved.cfa;
          state.registers = saved.registers;
          state.raSigned = saved.raSigned;
          break;
        }
        case 0x0c: // DW_CFA_def_cfa
          state.cfa = {
            kind: "register",
            register: register(),
            offset: c.uleb("offset"),
          };
          break;
        case 0x0d: { // DW_CFA_def_cfa_register
          // Keeps the offset; MIPS CIEs name the register first, offset 0.
          const r = register();
          state.cfa = state.cfa === undefined
            ? { kind: "register", register: r, offset: 0n }
            : { ...cfaRegister(at), register: r };
          break;
        }
        case 0x0e:
          state.cfa = { ...cfaRegister(at), offset: c.uleb("offset") };
          break;
        case 0x0f:
          state.cfa = {
            kind: "expression",
            expression: block("DW_CFA_def_cfa_expression"),
          };
          break;
        case 0x10:
          set(register(), {
            kind: "expression",
            expression: block("DW_CFA_expression"),
          });
          break;
        case 0x11: // DW_CFA_offset_extended_sf
          set(register(), { kind: "offset", offset: factored(true) });
          break;
        case 0x12: // DW_CFA_def_cfa_sf
          state.cfa = {
            kind: "register",
            register: register(),
            offset: factored(true),
          };
          break;
        case 0x13:
          state.cfa = { ...cfaRegister(at), offset: factored(true) };
          break;
        case 0x14:
          set(register(), { kind: "val_offset", offset: factored(false) });
          break;
        case 0x15:
          set(register(), { kind: "val_offset", offset: factored(true) });
          break;
        case 0x16:
          set(register(), {
            kind: "val_expression",
            expression: block("DW_CFA_val_expression"),
          });
          break;
        case 0x2d: // DW_CFA_AARCH64_negate_ra_state (DW_CFA_GNU_window_save)
          state.raSigned = !state.raSigned;
          break;
        case 0x2e: // DW_CFA_GNU_args_size
          c.uleb("DW_CFA_GNU_args_size");
          break;
        case 0x2f: // DW_CFA_GNU_negative_offset_extended
          set(register(), { kind: "offset", offset: -factored(false) });
          break;
        default:
          throw c.error(
            `expected a CFA instruction, found 0x${op.toString(16)}`,
            at,
          );
      }
    }

    function restore(register: number): void {
      const rule = initial?.get(register);
      if (rule === undefined) state.registers.delete(register);
      else state.registers.set(register, rule);
    }
  }
}
