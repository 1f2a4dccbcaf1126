/**
 * A read position over DWARF bytes (call frame information, expressions),
 * every read going through the ELF reader's bounds checks, plus the
 * variable-length and pointer encodings DWARF and `.eh_frame` use.
 *
 * @module
 */

import { ByteReader } from "../elf/mod.ts";
import { CfiFormatError } from "./errors.ts";

/** `DW_EH_PE_*`: how a pointer in `.eh_frame` is encoded. */
export const DW_EH_PE_omit = 0xff;

/** Bases the application part of a pointer encoding is relative to. */
export interface PointerBases {
  /** Address of `.text` (`DW_EH_PE_textrel`). */
  text?: bigint | undefined;
  /** Address of the data base: `.eh_frame_hdr` or `.got` (`DW_EH_PE_datarel`). */
  data?: bigint | undefined;
  /** Start of the function (`DW_EH_PE_funcrel`). */
  func?: bigint | undefined;
}

/** Reads DWARF data from a window of bytes, advancing as it goes. */
export class Cursor {
  readonly #reader: ByteReader;
  /** The address of the window's first byte, for `DW_EH_PE_pcrel`. */
  readonly address: bigint;
  /** What the bytes are, for messages: `.eh_frame of /lib/libc.so.6`. */
  readonly where: string;
  /** The position, from the window's start. */
  at: number;

  /** Creates a cursor at `at` in `reader`'s window, loaded at `address`. */
  constructor(reader: ByteReader, address: bigint, where: string, at = 0) {
    this.#reader = reader;
    this.address = address;
    this.where = where;
    this.at = at;
  }

  /** Bytes in the window. */
  get length(): number {
    return this.#reader.length;
  }

  /** True for 64-bit data. */
  get is64(): boolean {
    return this.#reader.is64;
  }

  /** True when the position is at or past the window's end. */
  get done(): boolean {
    return this.at >= this.#reader.length;
  }

  /** A new cursor over the same window, at its start. */
  fresh(): Cursor {
    return new Cursor(this.#reader, this.address, this.where);
  }

  /** A cursor over `length` bytes from here (and skips them here). */
  sub(length: number, field: string): Cursor {
    const bytes = this.#reader.bytes(this.at, length, this.#field(field));
    const reader = new ByteReader(bytes, {
      littleEndian: this.#reader.littleEndian,
      is64: this.#reader.is64,
    });
    const cursor = new Cursor(
      reader,
      this.address + BigInt(this.at),
      this.where,
    );
    this.at += length;
    return cursor;
  }

  /** The next `length` bytes, as a view. */
  bytes(length: number, field: string): Uint8Array {
    const bytes = this.#reader.bytes(this.at, length, this.#field(field));
    this.at += length;
    return bytes;
  }

  /** An unsigned byte. */
  u8(field: string): number {
    return this.#reader.u8(this.at++, this.#field(field));
  }

  /** An unsigned 16-bit number. */
  u16(field: string): number {
    const value = this.#reader.u16(this.at, this.#field(field));
    this.at += 2;
    return value;
  }

  /** An unsigned 32-bit number. */
  u32(field: string): number {
    const value = this.#reader.u32(this.at, this.#field(field));
    this.at += 4;
    return value;
  }

  /** An unsigned 64-bit number. */
  u64(field: string): bigint {
    const value = this.#reader.u64(this.at, this.#field(field));
    this.at += 8;
    return value;
  }

  /** An address: a word of the target's size. */
  word(field: string): bigint {
    return this.is64 ? this.u64(field) : BigInt(this.u32(field));
  }

  /** An unsigned LEB128 number (at most 64 bits). */
  uleb(field: string): bigint {
    const { value, next } = this.#reader.uleb128(this.at, this.#field(field));
    this.at = next;
    return value;
  }

  /** An unsigned LEB128 number that must fit a safe integer. */
  ulebNumber(field: string): number {
    const { value, next } = this.#reader.ulebNumber(
      this.at,
      this.#field(field),
    );
    this.at = next;
    return value;
  }

  /** A signed LEB128 number (at most 64 bits). */
  sleb(field: string): bigint {
    const { value, next } = this.#reader.sleb128(this.at, this.#field(field));
    this.at = next;
    return value;
  }

  /**
   * A pointer in a `DW_EH_PE_*` encoding; undefined for `DW_EH_PE_omit`.
   * An indirect pointer gives the address of the pointer, not its target.
   */
  pointer(
    encoding: number,
    field: string,
    bases: PointerBases = {},
  ): bigint | undefined {
    if (encoding === DW_EH_PE_omit) return undefined;
    const start = this.at;
    const here = this.address + BigInt(start);
    let value: bigint;
    switch (encoding & 0x0f) {
      case 0x00:
        value = this.word(field);
        break;
      case 0x01:
        value = this.uleb(field);
        break;
      case 0x02:
        value = BigInt(this.u16(field));
        break;
      case 0x03:
        value = BigInt(this.u32(field));
        break;
      case 0x04:
        value = this.u64(field);
        break;
      case 0x09:
        value = this.sleb(field);
        break;
      case 0x0a:
        value = BigInt(this.u16(field) << 16 >> 16);
        break;
      case 0x0b:
        value = BigInt(this.u32(field) | 0);
        break;
      case 0x0c:
        value = BigInt.asIntN(64, this.u64(field));
        break;
      default:
        throw this.error(
          `${field}: expected a pointer encoding, found 0x${
            encoding.toString(16)
          }`,
          start,
        );
    }
    let base = 0n;
    switch (encoding & 0x70) {
      case 0x00:
        break;
      case 0x10:
        base = here;
        break;
      case 0x20:
        base = this.#base(bases.text, "text", field, start);
        break;
      case 0x30:
        base = this.#base(bases.data, "data", field, start);
        break;
      case 0x40:
        base = this.#base(bases.func, "function", field, start);
        break;
      default:
        throw this.error(
          `${field}: expected a pointer encoding, found 0x${
            encoding.toString(16)
          }`,
          start,
        );
    }
    return BigInt.asUintN(this.is64 ? 64 : 32, base + value);
  }

  /** An error naming the place in the window. */
  error(message: string, at = this.at): CfiFormatError {
    return new CfiFormatError(
      `Cannot read ${this.where} at 0x${
        (this.address + BigInt(at)).toString(16)
      }: ${message}`,
    );
  }

  #base(
    base: bigint | undefined,
    name: string,
    field: string,
    at: number,
  ): bigint {
    if (base === undefined) {
      throw this.error(
        `${field}: a pointer relative to the ${name} base, which is not known here`,
        at,
      );
    }
    return base;
  }

  #field(field: string): string {
    return `${field} in ${this.where}`;
  }
}
