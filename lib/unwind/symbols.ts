/**
 * Function symbols of a module (`.symtab`, else `.dynsym`), sorted by
 * address, to name the function an address falls in: `name+0x1c`.
 *
 * @module
 */

import { ByteReader } from "../elf/mod.ts";
import { lastAtOrBelow } from "../util/mod.ts";
import { CfiFormatError } from "./errors.ts";

/** A function symbol. */
export interface FunctionSymbol {
  /** Its name, as the string table has it. */
  name: string;
  /** Its address (`st_value`, unrelocated). */
  address: bigint;
  /** Its size; 0 when the symbol table does not say. */
  size: bigint;
  /** `STB_LOCAL` (0), `STB_GLOBAL` (1) or `STB_WEAK` (2). */
  binding: number;
  /** True for `STT_GNU_IFUNC`: the address is the resolver's. */
  ifunc?: boolean;
}

/** One symbol table and its string table, as loaded. */
export interface SymbolSection {
  /** The symbol table's bytes (`SHT_SYMTAB` or `SHT_DYNSYM`). */
  symbols: Uint8Array;
  /** The string table it links to. */
  strings: Uint8Array;
}

/** Options for {@linkcode SymbolTable}. */
export interface SymbolTableOptions {
  /** True for ELF64. */
  is64: boolean;
  /** Byte order. */
  littleEndian: boolean;
  /**
   * Symbols kept at most.
   *
   * @default {1048576}
   */
  maxSymbols?: number;
}

const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;

/**
 * The functions of one module, for {@linkcode SymbolTable.lookup}.
 *
 * @example Usage
 * ```ts
 * import { SymbolTable } from "./symbols.ts";
 * import assert from "node:assert/strict";
 *
 * // An ELF64 .symtab: the null symbol, then "main" (FUNC, 0x1139, 32 bytes).
 * const symbols = new Uint8Array(48);
 * const view = new DataView(symbols.buffer);
 * view.setUint32(24, 1, true); // st_name
 * symbols[28] = 0x12; // st_info: GLOBAL FUNC
 * view.setUint16(30, 14, true); // st_shndx
 * view.setBigUint64(32, 0x1139n, true); // st_value
 * view.setBigUint64(40, 32n, true); // st_size
 * const strings = new TextEncoder().encode("\0main\0");
 * const table = new SymbolTable([{ symbols, strings }], { is64: true, littleEndian: true });
 * assert.deepEqual(table.lookup(0x1150n), { name: "main", offset: 0x17n });
 * assert.equal(table.lookup(0x1159n), undefined);
 * ```
 */
export class SymbolTable {
  readonly #functions: FunctionSymbol[];

  /**
   * Reads the function symbols of the first section that has any.
   *
   * @throws {CfiFormatError} When a table is not a whole number of entries.
   */
  constructor(sections: SymbolSection[], options: SymbolTableOptions) {
    const max = options.maxSymbols ?? 1 << 20;
    let functions: FunctionSymbol[] = [];
    for (const section of sections) {
      functions = readFunctions(section, options, max);
      if (functions.length > 0) break;
    }
    // By address; among aliases of one address, the name a person would
    // call it first: fewest leading underscores, then global, weak, local.
    // An IFUNC's resolver is named after the function it resolves.
    const rank = (f: FunctionSymbol) =>
      (/^_*/.exec(f.name)![0].length) * 8 + (f.ifunc ? 4 : 0) +
      (f.binding === 1 ? 0 : f.binding === 2 ? 1 : 2);
    functions.sort((a, b) =>
      a.address < b.address ? -1 : a.address > b.address ? 1 : rank(a) - rank(b)
    );
    // One entry per address: the preferred alias, with the largest size.
    const unique: FunctionSymbol[] = [];
    for (const symbol of functions) {
      const last = unique[unique.length - 1];
      if (last !== undefined && last.address === symbol.address) {
        if (symbol.size > last.size) {
          unique[unique.length - 1] = { ...last, size: symbol.size };
        }
      } else unique.push(symbol);
    }
    this.#functions = unique;
  }

  /** How many functions the table holds. */
  get size(): number {
    return this.#functions.length;
  }

  /**
   * The function `address` falls in: the nearest symbol at or below it,
   * within its size (or, for a symbol without one, before the next).
   *
   * @param address An unrelocated address of the module.
   * @returns The name and the offset into the function, or undefined.
   */
  lookup(address: bigint): { name: string; offset: bigint } | undefined {
    const all = this.#functions;
    const found = lastAtOrBelow(all.length, address, (i) => all[i]!.address);
    // Down to a sized symbol below that covers the address.
    for (let i = found; i >= 0 && i > found - 8; i--) {
      const symbol = all[i]!;
      let next = i + 1;
      while (next < all.length && all[next]!.address <= symbol.address) next++;
      const covers = symbol.size > 0n
        ? address < symbol.address + symbol.size
        : next === all.length || address < all[next]!.address;
      if (covers) {
        return { name: symbol.name, offset: address - symbol.address };
      }
      if (symbol.size === 0n) break;
    }
    return undefined;
  }
}

function readFunctions(
  section: SymbolSection,
  options: SymbolTableOptions,
  max: number,
): FunctionSymbol[] {
  const size = options.is64 ? 24 : 16;
  if (section.symbols.length % size !== 0) {
    throw new CfiFormatError(
      `Cannot read a symbol table of ${section.symbols.length} bytes: expected a multiple of ${size}`,
    );
  }
  const r = new ByteReader(section.symbols, options);
  const decoder = new TextDecoder();
  const count = Math.min(section.symbols.length / size, max);
  const functions: FunctionSymbol[] = [];
  for (let i = 1; i < count; i++) {
    const at = i * size;
    const info = r.u8(at + (options.is64 ? 4 : 12), "st_info");
    const type = info & 0xf;
    if (type !== STT_FUNC && type !== STT_GNU_IFUNC) continue;
    const shndx = r.u16(at + (options.is64 ? 6 : 14), "st_shndx");
    if (shndx === 0) continue; // Undefined: another module's.
    const address = options.is64
      ? r.u64(at + 8, "st_value")
      : BigInt(r.u32(at + 4, "st_value"));
    const length = options.is64
      ? r.u64(at + 16, "st_size")
      : BigInt(r.u32(at + 8, "st_size"));
    const nameAt = r.u32(at, "st_name");
    if (nameAt >= section.strings.length) continue;
    let end = section.strings.indexOf(0, nameAt);
    if (end === -1) end = section.strings.length;
    const name = decoder.decode(
      section.strings.subarray(nameAt, Math.min(end, nameAt + 1024)),
    );
    if (name !== "") {
      functions.push({
        name,
        address,
        size: length,
        binding: info >> 4,
        ...(type === STT_GNU_IFUNC ? { ifunc: true } : {}),
      });
    }
  }
  return functions;
}
