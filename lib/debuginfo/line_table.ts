/**
 * DWARF line tables (`.debug_line`, versions 2 to 5): which source file and
 * line an address of a module comes from. The tables are hostile input:
 * every read is bounds-checked, and rows are bounded in number.
 *
 * @module
 */

import { inflateSync } from "node:zlib";
import { ByteReader } from "../elf/mod.ts";
import { CfiFormatError } from "../unwind/mod.ts";
import { stringAt } from "./_strings.ts";

/** The sections a line table reads. */
export interface LineSections {
  /** `.debug_line`. */
  line: Uint8Array;
  /** `.debug_line_str` (DWARF 5 paths). */
  lineStr?: Uint8Array;
  /** `.debug_str`. */
  str?: Uint8Array;
}

/** Options for {@linkcode LineTable}. */
export interface LineTableOptions {
  /** True for ELF64 (the size of `DW_LNE_set_address`'s operand). */
  is64: boolean;
  /** Byte order. */
  littleEndian: boolean;
  /**
   * Rows kept at most, all units together.
   *
   * @default {4194304}
   */
  maxRows?: number;
}

/** Where an address comes from. */
export interface SourceLine {
  /** The source file, with its directory when the table gives one. */
  file: string;
  /** The line, from 1; 0 when the compiler gave none. */
  line: number;
}

interface Sequence {
  /** Row addresses, ascending; the last is the sequence's end. */
  addresses: number[];
  files: string[];
  lines: number[];
}

/**
 * The line tables of one module, read whole; {@linkcode LineTable.lookup}
 * finds an address's row.
 *
 * @example A DWARF 4 table of one file, built by hand
 * ```ts
 * import { LineTable } from "./line_table.ts";
 * import assert from "node:assert/strict";
 *
 * const program = [
 *   0x00, 9, 0x02, 0x00, 0x10, 0, 0, 0, 0, 0, 0, // DW_LNE_set_address 0x1000
 *   0x03, 9, // DW_LNS_advance_line +9: line 10
 *   0x01, // DW_LNS_copy: row 0x1000 line 10
 *   0x4b, // special: address +4, line +1
 *   0x02, 8, // DW_LNS_advance_pc 8
 *   0x00, 1, 0x01, // DW_LNE_end_sequence at 0x100c
 * ];
 * const header = [
 *   1, 1, 1, 0xfb, 14, 13, // min_inst 1, max_ops 1, is_stmt, base -5, range 14, opcode base 13
 *   0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, // standard opcode lengths
 *   ...new TextEncoder().encode("/src"), 0, 0, // include dirs
 *   ...new TextEncoder().encode("a.c"), 0, 1, 0, 0, 0, // file 1 in dir 1
 * ];
 * const unit = [4, 0, header.length & 0xff, 0, 0, 0, ...header, ...program];
 * const bytes = new Uint8Array([unit.length & 0xff, 0, 0, 0, ...unit]);
 * const table = new LineTable({ line: bytes }, { is64: true, littleEndian: true });
 * assert.deepEqual(table.lookup(0x1002n), { file: "/src/a.c", line: 10 });
 * assert.deepEqual(table.lookup(0x1004n), { file: "/src/a.c", line: 11 });
 * assert.equal(table.lookup(0x100cn), undefined);
 * ```
 */
export class LineTable {
  readonly #sequences: Sequence[] = [];
  readonly #files = new Map<number, string[]>();

  /**
   * Reads every unit of `.debug_line`.
   *
   * @throws {CfiFormatError} When a unit is malformed, or there are more
   *   rows than the limit.
   */
  constructor(sections: LineSections, options: LineTableOptions) {
    const r = new ByteReader(sections.line, options);
    const maxRows = options.maxRows ?? 1 << 22;
    let rows = 0;
    let at = 0;
    while (at < sections.line.length) {
      const unit = readUnit(r, at, sections, options);
      this.#files.set(at, unit.files);
      for (const sequence of unit.sequences) {
        rows += sequence.addresses.length;
        if (rows > maxRows) {
          throw new CfiFormatError(
            `Cannot read .debug_line: more than ${maxRows} rows`,
          );
        }
        this.#sequences.push(sequence);
      }
      at = unit.next;
    }
    this.#sequences.sort((a, b) => a.addresses[0]! - b.addresses[0]!);
  }

  /**
   * A unit's file names, by index (`DW_AT_call_file` counts in them).
   *
   * @param offset The unit's offset in `.debug_line` (`DW_AT_stmt_list`).
   * @returns Its files, or undefined for no unit there.
   */
  filesOf(offset: number): readonly string[] | undefined {
    return this.#files.get(offset);
  }

  /**
   * The source line of an address of the module (unrelocated).
   *
   * @param address The address.
   * @returns Its file and line, or undefined when no row covers it.
   */
  lookup(address: bigint): SourceLine | undefined {
    if (address > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    const at = Number(address);
    for (const sequence of this.#sequences) {
      const { addresses } = sequence;
      if (at < addresses[0]! || at >= addresses[addresses.length - 1]!) {
        continue;
      }
      let low = 0;
      let high = addresses.length - 2;
      while (low < high) {
        const middle = (low + high + 1) >> 1;
        if (addresses[middle]! <= at) low = middle;
        else high = middle - 1;
      }
      return { file: sequence.files[low]!, line: sequence.lines[low]! };
    }
    return undefined;
  }
}

/**
 * Section contents as stored: inflated when `SHF_COMPRESSED` (an
 * `Elf_Chdr` of type `ELFCOMPRESS_ZLIB` and a zlib stream).
 *
 * @example Usage
 * ```ts
 * import { sectionContents } from "./line_table.ts";
 * import { deflateSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("line table bytes");
 * const header = new Uint8Array(24);
 * const view = new DataView(header.buffer);
 * view.setUint32(0, 1, true); // ELFCOMPRESS_ZLIB
 * view.setBigUint64(8, BigInt(data.length), true);
 * const stored = new Uint8Array([...header, ...deflateSync(data)]);
 * assert.deepEqual(
 *   sectionContents(stored, { compressed: true, is64: true, littleEndian: true }),
 *   data,
 * );
 * ```
 *
 * @param bytes The section's bytes in the file.
 * @param options Whether it is compressed; the file's class and byte order.
 * @returns The contents.
 * @throws {CfiFormatError} When the compression is not zlib, or the data
 *   inflates to another size than the header says (or more than 256 MiB).
 */
export function sectionContents(
  bytes: Uint8Array,
  options: { compressed: boolean; is64: boolean; littleEndian: boolean },
): Uint8Array {
  if (!options.compressed) return bytes;
  const r = new ByteReader(bytes, options);
  const type = r.u32(0, "ch_type");
  const size = options.is64 ? r.u64(8, "ch_size") : BigInt(r.u32(4, "ch_size"));
  const headerSize = options.is64 ? 24 : 12;
  if (type !== 1) {
    throw new CfiFormatError(
      `Cannot read a compressed section: expected ELFCOMPRESS_ZLIB (1), found compression type ${type}`,
    );
  }
  if (size > 256n << 20n) {
    throw new CfiFormatError(
      `Cannot read a compressed section of ${size} bytes: expected at most 256 MiB`,
    );
  }
  const data = new Uint8Array(
    inflateSync(bytes.subarray(headerSize), {
      maxOutputLength: Number(size) + 1,
    }),
  );
  if (data.length !== Number(size)) {
    throw new CfiFormatError(
      `Cannot read a compressed section: it inflates to ${data.length} bytes, its header says ${size}`,
    );
  }
  return data;
}

/** One unit: its sequences, and where the next unit starts. */
function readUnit(
  r: ByteReader,
  start: number,
  sections: LineSections,
  options: LineTableOptions,
): { sequences: Sequence[]; next: number; files: string[] } {
  const fail = (message: string, at: number) =>
    new CfiFormatError(
      `Cannot read .debug_line at 0x${at.toString(16)}: ${message}`,
    );
  let at = start;
  let length = r.u32(at, "unit_length");
  at += 4;
  let offsetSize = 4;
  if (length === 0xffffffff) {
    const long = r.u64(at, "unit_length");
    at += 8;
    if (long > BigInt(r.length)) throw fail(`a unit of ${long} bytes`, start);
    length = Number(long);
    offsetSize = 8;
  }
  const end = at + length;
  if (end > r.length) {
    throw fail(
      `a unit of ${length} bytes, past the section's end (${
        r.length - at
      } bytes left)`,
      start,
    );
  }
  const c = new Reader(r, at, end);
  const version = c.u16();
  if (version < 2 || version > 5) {
    throw fail(`expected version 2 to 5, found ${version}`, at);
  }
  let addressSize = options.is64 ? 8 : 4;
  if (version >= 5) {
    addressSize = c.u8();
    c.u8(); // segment_selector_size
  }
  const headerLength = offsetSize === 8 ? Number(c.u64()) : c.u32();
  const programStart = c.at + headerLength;
  if (programStart > end) {
    throw fail(`a header of ${headerLength} bytes, past the unit's end`, at);
  }
  const minInstruction = c.u8();
  const maxOps = version >= 4 ? c.u8() : 1;
  c.u8(); // default_is_stmt: every row counts for a lookup.
  const lineBase = (c.u8() << 24) >> 24;
  const lineRange = c.u8();
  const opcodeBase = c.u8();
  if (lineRange === 0) throw fail("line_range 0, expected at least 1", at);
  if (maxOps !== 1) {
    throw fail(`VLIW tables (max ops ${maxOps}) are not read`, at);
  }
  const opcodeLengths: number[] = [];
  for (let i = 1; i < opcodeBase; i++) opcodeLengths.push(c.u8());
  const directories: string[] = [];
  const files: string[] = [];
  if (version >= 5) {
    const strings = (form: number): string =>
      formString(c, form, sections, offsetSize);
    for (const list of [directories, files]) {
      const formats: [number, number][] = [];
      const formatCount = c.u8();
      for (let i = 0; i < formatCount; i++) formats.push([c.uleb(), c.uleb()]);
      const count = c.uleb();
      if (count > 1 << 20) throw fail(`${count} entries`, c.at);
      for (let i = 0; i < count; i++) {
        let path = "";
        let directory = 0;
        for (const [content, form] of formats) {
          if (content === 1) path = strings(form);
          else if (content === 2) directory = Number(formNumber(c, form));
          else skipForm(c, form, offsetSize);
        }
        if (list === files) {
          const dir = directories[directory] ?? "";
          list.push(join(dir, path));
        } else list.push(path);
      }
    }
  } else {
    directories.push(""); // Index 0: the compilation directory, not named.
    for (;;) {
      const dir = c.cString();
      if (dir === "") break;
      directories.push(dir);
    }
    files.push(""); // Index 0 is not a file before DWARF 5.
    for (;;) {
      const name = c.cString();
      if (name === "") break;
      const dir = c.uleb();
      c.uleb();
      c.uleb();
      files.push(join(directories[dir] ?? "", name));
    }
  }
  // The line program.
  c.at = programStart;
  const sequences: Sequence[] = [];
  let sequence: Sequence = { addresses: [], files: [], lines: [] };
  let address = 0;
  let file = 1;
  let line = 1;
  const fileName = () => files[file] ?? `file ${file}`;
  const row = () => {
    sequence.addresses.push(address);
    sequence.files.push(fileName());
    sequence.lines.push(line);
  };
  const reset = () => {
    address = 0;
    file = 1;
    line = 1;
  };
  while (c.at < end) {
    const opcode = c.u8();
    if (opcode >= opcodeBase) {
      const adjusted = opcode - opcodeBase;
      address += Math.floor(adjusted / lineRange) * minInstruction;
      line += lineBase + (adjusted % lineRange);
      row();
      continue;
    }
    switch (opcode) {
      case 0: { // extended
        const size = c.uleb();
        const next = c.at + size;
        if (size === 0 || next > end) {
          throw fail(`an extended opcode of ${size} bytes`, c.at);
        }
        const extended = c.u8();
        if (extended === 1) { // DW_LNE_end_sequence
          row();
          if (sequence.addresses.length > 1) sequences.push(sequence);
          sequence = { addresses: [], files: [], lines: [] };
          reset();
        } else if (extended === 2) { // DW_LNE_set_address
          address = Number(addressSize === 8 ? c.u64() : BigInt(c.u32()));
        }
        c.at = next;
        break;
      }
      case 1: // DW_LNS_copy
        row();
        break;
      case 2:
        address += c.uleb() * minInstruction;
        break;
      case 3:
        line += c.sleb();
        break;
      case 4:
        file = c.uleb();
        break;
      case 9: // DW_LNS_fixed_advance_pc
        address += c.u16();
        break;
      case 8: // DW_LNS_const_add_pc
        address += Math.floor((255 - opcodeBase) / lineRange) * minInstruction;
        break;
      default: // Known without operands, or skipped by their counts.
        for (let i = 0; i < (opcodeLengths[opcode - 1] ?? 0); i++) c.uleb();
    }
  }
  return { sequences, next: end, files };
}

/** A bounded read position over one unit. */
class Reader {
  readonly #r: ByteReader;
  at: number;
  readonly #end: number;

  constructor(r: ByteReader, at: number, end: number) {
    this.#r = r;
    this.at = at;
    this.#end = end;
  }

  #take(size: number): number {
    if (this.at + size > this.#end) {
      throw new CfiFormatError(
        `Cannot read .debug_line at 0x${
          this.at.toString(16)
        }: the unit ends at 0x${this.#end.toString(16)}`,
      );
    }
    const at = this.at;
    this.at += size;
    return at;
  }

  u8(): number {
    return this.#r.u8(this.#take(1), ".debug_line");
  }

  u16(): number {
    return this.#r.u16(this.#take(2), ".debug_line");
  }

  u32(): number {
    return this.#r.u32(this.#take(4), ".debug_line");
  }

  u64(): bigint {
    return this.#r.u64(this.#take(8), ".debug_line");
  }

  uleb(): number {
    return this.#leb(this.#r.ulebNumber(this.at, ".debug_line LEB128"));
  }

  sleb(): number {
    const { value, next } = this.#r.sleb128(this.at, ".debug_line LEB128");
    return this.#leb({ value: Number(value), next });
  }

  /** Moves past a LEB128, which must end inside the unit. */
  #leb(read: { value: number; next: number }): number {
    this.#take(read.next - this.at);
    return read.value;
  }

  cString(): string {
    const start = this.at;
    let length = 0;
    while (this.u8() !== 0) {
      if (++length > 4096) {
        throw new CfiFormatError(
          `Cannot read .debug_line at 0x${
            start.toString(16)
          }: a name of more than 4096 bytes`,
        );
      }
    }
    return new TextDecoder().decode(
      this.#r.bytes(start, length, ".debug_line"),
    );
  }
}

/** A string attribute of a DWARF 5 entry format. */
function formString(
  c: Reader,
  form: number,
  sections: LineSections,
  offsetSize: number,
): string {
  switch (form) {
    case 0x08: // DW_FORM_string
      return c.cString();
    case 0x1f: // DW_FORM_line_strp
    case 0x0e: { // DW_FORM_strp
      const offset = offsetSize === 8 ? Number(c.u64()) : c.u32();
      const table = form === 0x1f ? sections.lineStr : sections.str;
      return stringAt(table, offset) ?? "?";
    }
    default:
      skipForm(c, form, offsetSize);
      return "?";
  }
}

/** A number attribute of a DWARF 5 entry format. */
function formNumber(c: Reader, form: number): bigint {
  switch (form) {
    case 0x0b:
      return BigInt(c.u8());
    case 0x05:
      return BigInt(c.u16());
    case 0x06:
      return BigInt(c.u32());
    case 0x07:
      return c.u64();
    case 0x0f:
      return BigInt(c.uleb());
    default:
      throw new CfiFormatError(
        `Cannot read .debug_line: expected a number form for a directory index, found form 0x${
          form.toString(16)
        }`,
      );
  }
}

/** Skips an attribute of a form the line table does not use. */
function skipForm(c: Reader, form: number, offsetSize: number): void {
  switch (form) {
    case 0x0b:
      c.u8();
      return;
    case 0x05:
      c.u16();
      return;
    case 0x06:
      c.u32();
      return;
    case 0x07:
      c.u64();
      return;
    case 0x1e: // DW_FORM_data16 (an MD5)
      c.u64();
      c.u64();
      return;
    case 0x0f:
      c.uleb();
      return;
    case 0x09: { // DW_FORM_block
      const length = c.uleb();
      for (let i = 0; i < length; i++) c.u8();
      return;
    }
    case 0x08:
      c.cString();
      return;
    case 0x1f:
    case 0x0e:
      if (offsetSize === 8) c.u64();
      else c.u32();
      return;
    default:
      throw new CfiFormatError(
        `Cannot read .debug_line: expected a form of a line table entry, found form 0x${
          form.toString(16)
        }`,
      );
  }
}

function join(dir: string, name: string): string {
  if (name.startsWith("/") || dir === "") return name;
  return `${dir.replace(/\/+$/, "")}/${name}`;
}
