/**
 * Private bounds-checked reader over ELF bytes: knows the class (32/64-bit)
 * and byte order, and turns every out-of-range read into an
 * `ElfFormatError` that names the field and the offset.
 *
 * @module
 */

import { ElfFormatError, TruncatedElfError } from "./errors.ts";

/** Byte order and class of the data. */
export interface ByteReaderOptions {
  /** True for little-endian data. */
  littleEndian: boolean;
  /** True for 64-bit data (ELFCLASS64): words are 8 bytes. */
  is64: boolean;
  /**
   * File offset of the first byte, for messages.
   *
   * @default {0}
   */
  baseOffset?: number;
  /**
   * Size of the whole file when known, for messages.
   *
   * @default {undefined}
   */
  fileSize?: number;
}

/** Reads fields out of a window of bytes, every read bounds-checked. */
export class ByteReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #littleEndian: boolean;
  readonly #is64: boolean;
  readonly #baseOffset: number;
  readonly #fileSize: number | undefined;

  /** Creates a reader over `bytes`. */
  constructor(bytes: Uint8Array, options: ByteReaderOptions) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#littleEndian = options.littleEndian;
    this.#is64 = options.is64;
    this.#baseOffset = options.baseOffset ?? 0;
    this.#fileSize = options.fileSize;
  }

  /** Number of bytes in the window. */
  get length(): number {
    return this.#bytes.length;
  }

  /** True for 64-bit data. */
  get is64(): boolean {
    return this.#is64;
  }

  /** True for little-endian data. */
  get littleEndian(): boolean {
    return this.#littleEndian;
  }

  /** Size of a `word` (an address or `unsigned long`): 4 or 8. */
  get wordSize(): number {
    return this.#is64 ? 8 : 4;
  }

  /** An unsigned byte. */
  u8(offset: number, field: string): number {
    this.#check(offset, 1, field);
    return this.#view.getUint8(offset);
  }

  /** An unsigned 16-bit number. */
  u16(offset: number, field: string): number {
    this.#check(offset, 2, field);
    return this.#view.getUint16(offset, this.#littleEndian);
  }

  /** An unsigned 32-bit number. */
  u32(offset: number, field: string): number {
    this.#check(offset, 4, field);
    return this.#view.getUint32(offset, this.#littleEndian);
  }

  /** A signed 32-bit number. */
  i32(offset: number, field: string): number {
    this.#check(offset, 4, field);
    return this.#view.getInt32(offset, this.#littleEndian);
  }

  /** An unsigned 64-bit number. */
  u64(offset: number, field: string): bigint {
    this.#check(offset, 8, field);
    return this.#view.getBigUint64(offset, this.#littleEndian);
  }

  /** An unsigned word: 32 bits in ELF32, 64 bits in ELF64. */
  word(offset: number, field: string): bigint {
    return this.#is64
      ? this.u64(offset, field)
      : BigInt(this.u32(offset, field));
  }

  /** A word that is an offset or size, as a safe number. */
  size(offset: number, field: string): number {
    return safeNumber(
      this.word(offset, field),
      field,
      this.#baseOffset + offset,
    );
  }

  /** A view of `length` bytes (not a copy). */
  bytes(offset: number, length: number, field: string): Uint8Array {
    this.#check(offset, length, field);
    return this.#bytes.subarray(offset, offset + length);
  }

  /**
   * An unsigned LEB128 number (DWARF's variable-length numbers), of at most
   * 10 bytes: its value, and where the next field starts.
   */
  uleb128(offset: number, field: string): { value: bigint; next: number } {
    let value = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8(offset + i, field);
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        return { value: BigInt.asUintN(64, value), next: offset + i + 1 };
      }
      shift += 7n;
    }
    throw this.#tooLong(offset, field);
  }

  /** A signed LEB128 number, of at most 10 bytes, and where the next field starts. */
  sleb128(offset: number, field: string): { value: bigint; next: number } {
    let value = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8(offset + i, field);
      value |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) {
        if (byte & 0x40) value -= 1n << shift;
        return { value: BigInt.asIntN(64, value), next: offset + i + 1 };
      }
    }
    throw this.#tooLong(offset, field);
  }

  /** An unsigned LEB128 number that is a length, a count or an index. */
  ulebNumber(offset: number, field: string): { value: number; next: number } {
    const { value, next } = this.uleb128(offset, field);
    return { value: safeNumber(value, field, this.#baseOffset + offset), next };
  }

  #tooLong(offset: number, field: string): ElfFormatError {
    return new ElfFormatError(
      `Cannot read ${field}: expected a LEB128 of at most 10 bytes at offset ${
        hex(this.#baseOffset + offset)
      }, found a longer one`,
      this.#baseOffset + offset,
    );
  }

  /** A NUL-terminated string of at most `max` bytes, decoded as UTF-8. */
  cString(offset: number, max: number, field: string): string {
    this.#check(offset, 1, field);
    const end = Math.min(this.#bytes.length, offset + max);
    let stop = this.#bytes.indexOf(0, offset);
    if (stop === -1 || stop > end) stop = end;
    return new TextDecoder().decode(this.#bytes.subarray(offset, stop));
  }

  #check(offset: number, size: number, field: string): void {
    if (
      Number.isInteger(offset) && offset >= 0 && size >= 0 &&
      offset + size <= this.#bytes.length
    ) {
      return;
    }
    const at = this.#baseOffset + offset;
    const end = this.#baseOffset + this.#bytes.length;
    const limit = this.#fileSize === undefined || this.#fileSize > end
      ? `the ${this.#bytes.length} bytes available at ${hex(this.#baseOffset)}`
      : `file size ${this.#fileSize}`;
    const message = `Cannot read ${field}: offset ${
      hex(at)
    } + ${size} bytes exceeds ${limit}`;
    throw this.#fileSize !== undefined && at + size > this.#fileSize
      ? new TruncatedElfError(message, at)
      : new ElfFormatError(message, at);
  }
}

/**
 * Converts a 64-bit offset or size to a number, refusing values past
 * `Number.MAX_SAFE_INTEGER`.
 *
 * @example Usage
 * ```ts
 * import { safeNumber } from "./_byte_reader.ts";
 * import { ElfFormatError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(safeNumber(4096n, "p_offset", 0x40), 4096);
 * assert.throws(() => safeNumber(1n << 60n, "p_offset", 0x40), ElfFormatError);
 * ```
 *
 * @param value The value as read.
 * @param field The field's name, for the message.
 * @param offset The field's file offset, for the message.
 * @returns The value as a number.
 * @throws {ElfFormatError} When the value is not safe.
 */
export function safeNumber(
  value: bigint,
  field: string,
  offset: number,
): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ElfFormatError(
      `Cannot use ${field} 0x${value.toString(16)} at offset ${
        hex(offset)
      }: it exceeds 2^53, expected a file offset or size`,
      offset,
    );
  }
  return Number(value);
}

/** `0x1f40` style. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
