/**
 * DWARF debugging information entries (`.debug_info`, versions 2 to 5),
 * read for one question: which functions an address is in, the functions
 * inlined into each other innermost first (`DW_TAG_inlined_subroutine`,
 * with the file and line each was called from), then the function that
 * holds them (`DW_TAG_subprogram`), named even where the symbol table is
 * gone. Hostile input: bounded reads and depths, and entries are read only
 * for the unit that holds the address.
 *
 * @module
 */

import { ByteReader } from "../elf/mod.ts";
import { CfiFormatError } from "../unwind/mod.ts";
import { stringAt } from "./_strings.ts";

/** The sections the entries read. */
export interface DebugInfoSections {
  /** `.debug_info`. */
  info: Uint8Array;
  /** `.debug_abbrev`. */
  abbrev: Uint8Array;
  /** `.debug_str`. */
  str?: Uint8Array;
  /** `.debug_line_str`. */
  lineStr?: Uint8Array;
  /** `.debug_str_offsets` (DWARF 5). */
  strOffsets?: Uint8Array;
  /** `.debug_addr` (DWARF 5). */
  addr?: Uint8Array;
  /** `.debug_ranges` (DWARF 4). */
  ranges?: Uint8Array;
  /** `.debug_rnglists` (DWARF 5). */
  rnglists?: Uint8Array;
}

/** One function an address is in. */
export interface Scope {
  /** Its name (`DW_AT_linkage_name` when there is one, else `DW_AT_name`). */
  function: string;
  /** For an inlined function: the file index it was called from. */
  callFile?: number;
  /** For an inlined function: the line it was called from. */
  callLine?: number;
  /** True for a function inlined into the next. */
  inlined: boolean;
}

/** What one unit says of an address. */
export interface UnitScopes {
  /** Innermost first: inlined functions, then the subprogram. */
  scopes: Scope[];
  /** The unit's line table (`DW_AT_stmt_list`), for its file indexes. */
  lineOffset?: number;
}

interface Abbrev {
  tag: number;
  children: boolean;
  attributes: [number, number, bigint][];
}

interface Unit {
  offset: number;
  end: number;
  version: number;
  offsetSize: number;
  addressSize: number;
  abbrevs: Map<number, Abbrev>;
  /** Offset of the unit's first entry. */
  entries: number;
  ranges?: [bigint, bigint][] | undefined;
  lineOffset?: number;
  strOffsetsBase: number;
  addrBase: number;
  rnglistsBase: number;
  lowPc: bigint;
}

const TAG_COMPILE_UNIT = 0x11;
const TAG_PARTIAL_UNIT = 0x3c;
const TAG_SUBPROGRAM = 0x2e;
const TAG_INLINED = 0x1d;
const AT = {
  name: 0x03,
  lowPc: 0x11,
  highPc: 0x12,
  stmtList: 0x10,
  abstractOrigin: 0x31,
  specification: 0x47,
  ranges: 0x55,
  callFile: 0x58,
  callLine: 0x59,
  linkageName: 0x6e,
  mipsLinkageName: 0x2007,
  strOffsetsBase: 0x72,
  addrBase: 0x73,
  rnglistsBase: 0x74,
} as const;

/** Deepest entry nesting followed. */
const MAX_DEPTH = 256;
/** Units read at most. */
const MAX_UNITS = 1 << 16;

/**
 * The entries of one module's `.debug_info`.
 *
 * Tested against eu-addr2line -i on gcc's output (tests/debuginfo).
 */
export class DebugInfo {
  readonly #sections: DebugInfoSections;
  readonly #r: ByteReader;
  readonly #littleEndian: boolean;
  #units: Unit[] | undefined;

  /** Reads nothing yet: units are found on the first lookup. */
  constructor(sections: DebugInfoSections, options: { littleEndian: boolean }) {
    this.#sections = sections;
    this.#littleEndian = options.littleEndian;
    this.#r = this.#reader(sections.info);
  }

  /**
   * The functions `address` is in, innermost first.
   *
   * @param address An address of the module (unrelocated).
   * @returns The unit's answer, or undefined when no unit covers it.
   * @throws {CfiFormatError} When the entries are malformed.
   */
  scopes(address: bigint): UnitScopes | undefined {
    this.#units ??= this.#readUnits();
    const unit = this.#units.find((u) =>
      u.ranges?.some(([low, high]) => low <= address && address < high)
    );
    if (unit === undefined) return undefined;
    const chain: Scope[] = [];
    const stack: { depth: number }[] = [];
    let depth = 0;
    let at = unit.entries;
    while (at < unit.end) {
      const code = this.#uleb(at);
      at = code.next;
      if (code.value === 0) {
        // The end of a list of children; a scope that holds the address
        // stays held (its later siblings cannot hold it too).
        if (--depth <= 0) break;
        continue;
      }
      const abbrev = unit.abbrevs.get(code.value);
      if (abbrev === undefined) {
        throw this.#error(
          `an abbreviation code ${code.value} the unit does not define`,
          at,
        );
      }
      const values = new Map<number, Value>();
      at = this.#attributes(unit, abbrev, at, values);
      if (abbrev.tag === TAG_SUBPROGRAM || abbrev.tag === TAG_INLINED) {
        if (this.#covers(unit, values, address)) {
          const name = this.#name(unit, values, 0);
          const scope: Scope = {
            function: name ?? "??",
            inlined: abbrev.tag === TAG_INLINED,
          };
          const file = values.get(AT.callFile);
          const line = values.get(AT.callLine);
          if (typeof file === "bigint") scope.callFile = Number(file);
          if (typeof line === "bigint") scope.callLine = Number(line);
          // Nested scopes come after: the chain is outermost first here.
          while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) {
            stack.pop();
            chain.pop();
          }
          chain.push(scope);
          stack.push({ depth });
        }
      }
      if (abbrev.children) {
        depth++;
        if (depth > MAX_DEPTH) throw this.#error("entries nested too deep", at);
      }
    }
    const result: UnitScopes = { scopes: chain.reverse() };
    if (unit.lineOffset !== undefined) result.lineOffset = unit.lineOffset;
    return result;
  }

  #reader(bytes: Uint8Array): ByteReader {
    return new ByteReader(bytes, {
      littleEndian: this.#littleEndian,
      is64: true,
    });
  }

  #error(message: string, at: number): CfiFormatError {
    return new CfiFormatError(
      `Cannot read .debug_info at 0x${at.toString(16)}: ${message}`,
    );
  }

  #uleb(at: number, r = this.#r): { value: number; next: number } {
    return r.ulebNumber(at, ".debug_info LEB128");
  }

  #sleb(at: number, r = this.#r): { value: bigint; next: number } {
    return r.sleb128(at, ".debug_info LEB128");
  }

  /** Every unit's header and root entry (its ranges). */
  #readUnits(): Unit[] {
    const units: Unit[] = [];
    let at = 0;
    while (at < this.#sections.info.length && units.length < MAX_UNITS) {
      const unit = this.#unitHeader(at);
      const values = new Map<number, Value>();
      const code = this.#uleb(unit.entries);
      const abbrev = unit.abbrevs.get(code.value);
      if (
        abbrev !== undefined &&
        (abbrev.tag === TAG_COMPILE_UNIT || abbrev.tag === TAG_PARTIAL_UNIT)
      ) {
        this.#attributes(unit, abbrev, code.next, values);
        const base = (tag: number) => {
          const v = values.get(tag);
          return typeof v === "bigint" ? Number(v) : 0;
        };
        unit.strOffsetsBase = base(AT.strOffsetsBase);
        unit.addrBase = base(AT.addrBase);
        unit.rnglistsBase = base(AT.rnglistsBase);
        const low = this.#address(unit, values.get(AT.lowPc));
        if (low !== undefined) unit.lowPc = low;
        const stmt = values.get(AT.stmtList);
        if (typeof stmt === "bigint") unit.lineOffset = Number(stmt);
        unit.ranges = this.#ranges(unit, values);
      }
      units.push(unit);
      at = unit.end;
    }
    return units;
  }

  #unitHeader(at: number): Unit {
    const r = this.#r;
    let length = r.u32(at, "unit_length");
    let offsetSize = 4;
    let next = at + 4;
    if (length === 0xffffffff) {
      const long = r.u64(next, "unit_length");
      if (long > BigInt(this.#sections.info.length)) {
        throw this.#error(`a unit of ${long} bytes`, at);
      }
      length = Number(long);
      offsetSize = 8;
      next += 8;
    }
    const end = next + length;
    if (end > this.#sections.info.length) {
      throw this.#error(
        `a unit of ${length} bytes, past the section's end`,
        at,
      );
    }
    const version = r.u16(next, "version");
    next += 2;
    if (version < 2 || version > 5) {
      throw this.#error(`expected version 2 to 5, found ${version}`, at);
    }
    let addressSize: number;
    let abbrevOffset: number;
    const offset = (where: number) =>
      offsetSize === 8
        ? Number(r.u64(where, "offset"))
        : r.u32(where, "offset");
    if (version >= 5) {
      const type = r.u8(next, "unit_type");
      addressSize = r.u8(next + 1, "address_size");
      abbrevOffset = offset(next + 2);
      next += 2 + offsetSize;
      if (type === 4 || type === 5) next += 8; // skeleton, split: dwo_id
      if (type === 2 || type === 6) next += 8 + offsetSize; // type units
    } else {
      abbrevOffset = offset(next);
      addressSize = r.u8(next + offsetSize, "address_size");
      next += offsetSize + 1;
    }
    if (addressSize !== 4 && addressSize !== 8) {
      throw this.#error(
        `expected an address size of 4 or 8, found ${addressSize}`,
        at,
      );
    }
    return {
      offset: at,
      end,
      version,
      offsetSize,
      addressSize,
      abbrevs: this.#abbrevs(abbrevOffset),
      entries: next,
      strOffsetsBase: 0,
      addrBase: 0,
      rnglistsBase: 0,
      lowPc: 0n,
    };
  }

  #abbrevCache = new Map<number, Map<number, Abbrev>>();

  #abbrevs(offset: number): Map<number, Abbrev> {
    const known = this.#abbrevCache.get(offset);
    if (known !== undefined) return known;
    const r = this.#reader(this.#sections.abbrev);
    const table = new Map<number, Abbrev>();
    let at = offset;
    for (;;) {
      const code = this.#uleb(at, r);
      at = code.next;
      if (code.value === 0) break;
      const tag = this.#uleb(at, r);
      at = tag.next;
      const children = r.u8(at++, "DW_CHILDREN") !== 0;
      const attributes: [number, number, bigint][] = [];
      for (;;) {
        const name = this.#uleb(at, r);
        const form = this.#uleb(name.next, r);
        at = form.next;
        if (name.value === 0 && form.value === 0) break;
        let constant = 0n;
        if (form.value === 0x21) {
          const value = this.#sleb(at, r);
          constant = value.value;
          at = value.next;
        }
        attributes.push([name.value, form.value, constant]);
        if (attributes.length > 256) {
          throw this.#error("an abbreviation of more than 256 attributes", at);
        }
      }
      table.set(code.value, { tag: tag.value, children, attributes });
      if (table.size > 1 << 16) {
        throw this.#error("more than 65536 abbreviations", at);
      }
    }
    this.#abbrevCache.set(offset, table);
    return table;
  }

  /** Reads an entry's attributes; returns where the next entry starts. */
  #attributes(
    unit: Unit,
    abbrev: Abbrev,
    start: number,
    values: Map<number, Value>,
  ): number {
    let at = start;
    for (const [name, form, constant] of abbrev.attributes) {
      const read = this.#form(unit, form, at, constant);
      at = read.next;
      if (read.value !== undefined) values.set(name, read.value);
    }
    return at;
  }

  /** One attribute's value, by its form. */
  #form(
    unit: Unit,
    form: number,
    at: number,
    constant: bigint,
  ): { value: Value | undefined; next: number } {
    const r = this.#r;
    const off = () =>
      unit.offsetSize === 8
        ? { value: r.u64(at, "offset"), next: at + 8 }
        : { value: BigInt(r.u32(at, "offset")), next: at + 4 };
    const uleb = () => {
      const v = this.#uleb(at);
      return { value: BigInt(v.value), next: v.next };
    };
    switch (form) {
      case 0x01: // addr
        return unit.addressSize === 8
          ? { value: { address: r.u64(at, "address") }, next: at + 8 }
          : { value: { address: BigInt(r.u32(at, "address")) }, next: at + 4 };
      case 0x0b: // data1
      case 0x11: // ref1
      case 0x0c: // flag
        return {
          value: tagged(form, BigInt(r.u8(at, "data1")), unit),
          next: at + 1,
        };
      case 0x05:
      case 0x12:
        return {
          value: tagged(form, BigInt(r.u16(at, "data2")), unit),
          next: at + 2,
        };
      case 0x06:
      case 0x13:
        return {
          value: tagged(form, BigInt(r.u32(at, "data4")), unit),
          next: at + 4,
        };
      case 0x07:
      case 0x14:
      case 0x20: // ref_sig8
        return { value: tagged(form, r.u64(at, "data8"), unit), next: at + 8 };
      case 0x0d: { // sdata
        const v = this.#sleb(at);
        return { value: v.value, next: v.next };
      }
      case 0x0f: // udata
        return uleb();
      case 0x15: { // ref_udata
        const v = uleb();
        return { value: { ref: unit.offset + Number(v.value) }, next: v.next };
      }
      case 0x08: { // string
        const end = this.#sections.info.indexOf(0, at);
        if (end === -1 || end >= unit.end) {
          throw this.#error("a string past the unit's end", at);
        }
        return {
          value: new TextDecoder().decode(
            this.#sections.info.subarray(at, Math.min(end, at + 4096)),
          ),
          next: end + 1,
        };
      }
      case 0x0e: // strp
      case 0x1f: { // line_strp
        const v = off();
        return {
          value: stringAt(
            form === 0x0e ? this.#sections.str : this.#sections.lineStr,
            Number(v.value),
          ),
          next: v.next,
        };
      }
      case 0x10: { // ref_addr
        const v = unit.version <= 2
          ? (unit.addressSize === 8
            ? { value: r.u64(at, "ref_addr"), next: at + 8 }
            : { value: BigInt(r.u32(at, "ref_addr")), next: at + 4 })
          : off();
        return { value: { ref: Number(v.value) }, next: v.next };
      }
      case 0x17: // sec_offset
        return off();
      case 0x19: // flag_present
        return { value: 1n, next: at };
      case 0x21: // implicit_const
        return { value: constant, next: at };
      case 0x0a: // block1
        return { value: undefined, next: at + 1 + r.u8(at, "block1") };
      case 0x03: // block2
        return { value: undefined, next: at + 2 + r.u16(at, "block2") };
      case 0x04: // block4
        return { value: undefined, next: at + 4 + r.u32(at, "block4") };
      case 0x09: // block
      case 0x18: { // exprloc
        const v = this.#uleb(at);
        return { value: undefined, next: v.next + v.value };
      }
      case 0x1e: // data16
        return { value: undefined, next: at + 16 };
      case 0x1a: // strx
      case 0x25:
      case 0x26:
      case 0x27:
      case 0x28: {
        const size = form === 0x1a ? 0 : form - 0x24;
        const v = size === 0
          ? uleb()
          : { value: BigInt(readN(r, at, size)), next: at + size };
        return { value: this.#strx(unit, Number(v.value)), next: v.next };
      }
      case 0x1b: // addrx
      case 0x29:
      case 0x2a:
      case 0x2b:
      case 0x2c: {
        const size = form === 0x1b ? 0 : form - 0x28;
        const v = size === 0
          ? uleb()
          : { value: BigInt(readN(r, at, size)), next: at + size };
        return { value: { addrx: Number(v.value) }, next: v.next };
      }
      case 0x22: // loclistx
        return uleb();
      case 0x23: { // rnglistx
        const v = uleb();
        return { value: { rnglistx: Number(v.value) }, next: v.next };
      }
      case 0x1c: // ref_sup4
        return { value: undefined, next: at + 4 };
      case 0x24: // ref_sup8
        return { value: undefined, next: at + 8 };
      case 0x1d: // strp_sup
      case 0x1f20: // GNU_ref_alt
      case 0x1f21: // GNU_strp_alt
        return { value: undefined, next: off().next };
      case 0x16: { // indirect
        const real = this.#uleb(at);
        return this.#form(unit, real.value, real.next, constant);
      }
      default:
        throw this.#error(
          `expected an attribute form, found 0x${form.toString(16)}`,
          at,
        );
    }
  }

  #strx(unit: Unit, index: number): string | undefined {
    const table = this.#sections.strOffsets;
    if (table === undefined) return undefined;
    const at = unit.strOffsetsBase + index * unit.offsetSize;
    if (at + unit.offsetSize > table.length) return undefined;
    const r = this.#reader(table);
    const offset = unit.offsetSize === 8
      ? Number(r.u64(at, "str_offsets"))
      : r.u32(at, "str_offsets");
    return stringAt(this.#sections.str, offset);
  }

  #address(unit: Unit, value: Value | undefined): bigint | undefined {
    if (value === undefined || typeof value !== "object") return undefined;
    if ("address" in value) return value.address;
    if ("addrx" in value) {
      const table = this.#sections.addr;
      const at = unit.addrBase + value.addrx * unit.addressSize;
      if (table === undefined || at + unit.addressSize > table.length) {
        return undefined;
      }
      const r = this.#reader(table);
      return unit.addressSize === 8
        ? r.u64(at, "debug_addr")
        : BigInt(r.u32(at, "debug_addr"));
    }
    return undefined;
  }

  /** An entry's ranges: low/high pc, or `DW_AT_ranges`. */
  #ranges(
    unit: Unit,
    values: Map<number, Value>,
  ): [bigint, bigint][] | undefined {
    const low = this.#address(unit, values.get(AT.lowPc));
    const high = values.get(AT.highPc);
    if (low !== undefined && high !== undefined) {
      const end = typeof high === "bigint"
        ? low + high
        : this.#address(unit, high);
      return end === undefined ? undefined : [[low, end]];
    }
    const ranges = values.get(AT.ranges);
    if (ranges === undefined) return undefined;
    if (unit.version >= 5) return this.#rnglist(unit, ranges);
    if (typeof ranges !== "bigint" || this.#sections.ranges === undefined) {
      return undefined;
    }
    const r = this.#reader(this.#sections.ranges);
    const out: [bigint, bigint][] = [];
    let base = unit.lowPc;
    const size = unit.addressSize;
    const max = size === 8 ? 0xffffffffffffffffn : 0xffffffffn;
    for (let at = Number(ranges); out.length < 4096; at += 2 * size) {
      const a = size === 8 ? r.u64(at, "ranges") : BigInt(r.u32(at, "ranges"));
      const b = size === 8
        ? r.u64(at + size, "ranges")
        : BigInt(r.u32(at + size, "ranges"));
      if (a === 0n && b === 0n) break;
      if (a === max) base = b;
      else out.push([base + a, base + b]);
    }
    return out;
  }

  #rnglist(unit: Unit, value: Value): [bigint, bigint][] | undefined {
    const table = this.#sections.rnglists;
    if (table === undefined) return undefined;
    const r = this.#reader(table);
    let at: number;
    if (typeof value === "object" && "rnglistx" in value) {
      const slot = unit.rnglistsBase + value.rnglistx * unit.offsetSize;
      const offset = unit.offsetSize === 8
        ? Number(r.u64(slot, "rnglists"))
        : r.u32(slot, "rnglists");
      at = unit.rnglistsBase + offset;
    } else if (typeof value === "bigint") {
      at = Number(value);
    } else return undefined;
    const out: [bigint, bigint][] = [];
    let base = unit.lowPc;
    const address = (where: number) =>
      unit.addressSize === 8
        ? r.u64(where, "rnglists")
        : BigInt(r.u32(where, "rnglists"));
    const indexed = (index: number) =>
      this.#address(unit, { addrx: index }) ?? 0n;
    while (out.length < 4096) {
      const kind = r.u8(at++, "DW_RLE");
      if (kind === 0) break;
      if (kind === 1) {
        const i = this.#uleb(at, r);
        base = indexed(i.value);
        at = i.next;
      } else if (kind === 2) {
        const a = this.#uleb(at, r);
        const b = this.#uleb(a.next, r);
        out.push([indexed(a.value), indexed(b.value)]);
        at = b.next;
      } else if (kind === 3) {
        const a = this.#uleb(at, r);
        const b = this.#uleb(a.next, r);
        const start = indexed(a.value);
        out.push([start, start + BigInt(b.value)]);
        at = b.next;
      } else if (kind === 4) {
        const a = this.#uleb(at, r);
        const b = this.#uleb(a.next, r);
        out.push([base + BigInt(a.value), base + BigInt(b.value)]);
        at = b.next;
      } else if (kind === 5) {
        base = address(at);
        at += unit.addressSize;
      } else if (kind === 6) {
        out.push([address(at), address(at + unit.addressSize)]);
        at += 2 * unit.addressSize;
      } else if (kind === 7) {
        const start = address(at);
        const length = this.#uleb(at + unit.addressSize, r);
        out.push([start, start + BigInt(length.value)]);
        at = length.next;
      } else {
        throw this.#error(
          `expected a range list entry, found kind ${kind}`,
          at - 1,
        );
      }
    }
    return out;
  }

  #covers(unit: Unit, values: Map<number, Value>, address: bigint): boolean {
    const ranges = this.#ranges(unit, values);
    return ranges?.some(([low, high]) => low <= address && address < high) ??
      false;
  }

  /** An entry's name, through its abstract origin or specification. */
  #name(
    unit: Unit,
    values: Map<number, Value>,
    hops: number,
  ): string | undefined {
    const linkage = values.get(AT.linkageName) ??
      values.get(AT.mipsLinkageName);
    if (typeof linkage === "string") return linkage;
    const name = values.get(AT.name);
    if (typeof name === "string") return name;
    if (hops > 8) return undefined;
    for (const tag of [AT.abstractOrigin, AT.specification]) {
      const ref = values.get(tag);
      if (typeof ref !== "object" || !("ref" in ref)) continue;
      const target = this.#units!.find((u) =>
        u.offset <= ref.ref && ref.ref < u.end
      ) ?? unit;
      const code = this.#uleb(ref.ref);
      const abbrev = target.abbrevs.get(code.value);
      if (abbrev === undefined) return undefined;
      const origin = new Map<number, Value>();
      this.#attributes(target, abbrev, code.next, origin);
      return this.#name(target, origin, hops + 1);
    }
    return undefined;
  }
}

type Value =
  | bigint
  | string
  | { address: bigint }
  | { addrx: number }
  | { ref: number }
  | { rnglistx: number };

/** A reference form's value is an offset in the unit; the rest are numbers. */
function tagged(form: number, value: bigint, unit: Unit): Value {
  return form >= 0x11 && form <= 0x14
    ? { ref: unit.offset + Number(value) }
    : value;
}

function readN(r: ByteReader, at: number, size: number): number {
  let value = 0;
  for (let i = 0; i < size; i++) {
    value += r.u8(at + i, "index") *
      2 ** (8 * (r.littleEndian ? i : size - 1 - i));
  }
  return value;
}
