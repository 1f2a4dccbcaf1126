/**
 * ELF headers and tables (ELF32 and ELF64, either byte order), in one
 * class-independent shape modelled on Go's `debug/elf`: an {@linkcode ElfFile}
 * holds the `header`, `programs` and `sections` (names resolved). Contents are
 * read on demand, never copied at parse time.
 *
 * Every offset and size is checked; bad input throws
 * {@linkcode ElfFormatError} (or {@linkcode TruncatedElfError} when the file
 * simply ends too soon) naming the field and the offset.
 *
 * @module
 */

import { readFileAt, ShortReadError } from "../fs/mod.ts";
import { ByteReader, hex, safeNumber } from "./_byte_reader.ts";
import { ElfFormatError, TruncatedElfError } from "./errors.ts";
import { toHex } from "../util/mod.ts";

export { ElfFormatError, TruncatedElfError } from "./errors.ts";

/** ELF32 `e_ident[EI_CLASS]`. */
export const ELFCLASS32 = 1;
/** ELF64 `e_ident[EI_CLASS]`. */
export const ELFCLASS64 = 2;
/** Little-endian `e_ident[EI_DATA]`. */
export const ELFDATA2LSB = 1;
/** Big-endian `e_ident[EI_DATA]`. */
export const ELFDATA2MSB = 2;

/** Relocatable file. */
export const ET_REL = 1;
/** Executable file. */
export const ET_EXEC = 2;
/** Shared object (or position-independent executable). */
export const ET_DYN = 3;
/** Core file. */
export const ET_CORE = 4;

/** Loadable segment. */
export const PT_LOAD = 1;
/** Dynamic linking information. */
export const PT_DYNAMIC = 2;
/** Program interpreter path. */
export const PT_INTERP = 3;
/** Notes. */
export const PT_NOTE = 4;
/** The program header table itself. */
export const PT_PHDR = 6;

/** Program data. */
export const SHT_PROGBITS = 1;
/** Symbol table. */
export const SHT_SYMTAB = 2;
/** String table. */
export const SHT_STRTAB = 3;
/** Notes. */
export const SHT_NOTE = 7;
/** Occupies no file space. */
export const SHT_NOBITS = 8;

/** `e_shstrndx` escape: the index is in section 0's `sh_link`. */
export const SHN_XINDEX = 0xffff;
/** `e_phnum` escape: the count is in section 0's `sh_info`. */
export const PN_XNUM = 0xffff;

/** Machines, as `e_machine`. */
export const EM_386 = 3;
/** MIPS. */
export const EM_MIPS = 8;
/** 32-bit PowerPC. */
export const EM_PPC = 20;
/** 64-bit PowerPC. */
export const EM_PPC64 = 21;
/** IBM S/390. */
export const EM_S390 = 22;
/** 32-bit ARM. */
export const EM_ARM = 40;
/** AMD x86-64. */
export const EM_X86_64 = 62;
/** 64-bit ARM. */
export const EM_AARCH64 = 183;
/** RISC-V. */
export const EM_RISCV = 243;
/** LoongArch. */
export const EM_LOONGARCH = 258;

/** Sizes of the fixed structures, by class. */
const SIZES = {
  32: { ehdr: 52, phdr: 32, shdr: 40 },
  64: { ehdr: 64, phdr: 56, shdr: 64 },
} as const;

/** Most program headers a file may declare (the 16-bit field's range). */
const MAX_PROGRAMS = 65535;
/** Most sections, including extended numbering. */
const MAX_SECTIONS = 1 << 18;
/** Largest section name table read. */
const MAX_SHSTRTAB = 1 << 20;

/** The ELF file header, class-independent. */
export interface ElfHeader {
  /** 32 or 64. */
  class: 32 | 64;
  /** True for little-endian data (`e_ident[EI_DATA]`), false for big. */
  littleEndian: boolean;
  /** `e_ident[EI_OSABI]`: the OS and ABI, 0 for System V. */
  osAbi: number;
  /** `e_ident[EI_ABIVERSION]`: the version of that ABI. */
  abiVersion: number;
  /** `e_type`: {@linkcode ET_EXEC}, {@linkcode ET_CORE} ... */
  type: number;
  /** `e_machine`: {@linkcode EM_X86_64} ... */
  machine: number;
  /** `e_version`: 1, the only version. */
  version: number;
  /** `e_entry`: the virtual address of the entry point; 0 for none. */
  entry: bigint;
  /** `e_phoff`: file offset of the program header table, in bytes. */
  phoff: number;
  /** `e_shoff`: file offset of the section header table, in bytes. */
  shoff: number;
  /** `e_flags`: processor-specific flags. */
  flags: number;
  /** `e_ehsize`: bytes of this header. */
  ehsize: number;
  /** `e_phentsize`: bytes per program header. */
  phentsize: number;
  /** Number of program headers (after extended numbering). */
  phnum: number;
  /** `e_shentsize`: bytes per section header. */
  shentsize: number;
  /** Number of section headers (after extended numbering). */
  shnum: number;
  /** Index of the section name table (after extended numbering). */
  shstrndx: number;
}

/** A program header (segment). */
export interface ElfProgram {
  /** `p_type`: {@linkcode PT_LOAD}, {@linkcode PT_NOTE} ... */
  type: number;
  /** `p_flags`: the execute (1), write (2) and read (4) bits. */
  flags: number;
  /** `p_offset`: file offset of the segment, in bytes. */
  offset: number;
  /** `p_vaddr`: the segment's virtual address in memory. */
  vaddr: bigint;
  /** `p_paddr`: its physical address, on systems where that matters. */
  paddr: bigint;
  /** `p_filesz`: bytes of the segment in the file. */
  filesz: number;
  /** `p_memsz`: bytes of the segment in memory (at least `filesz`). */
  memsz: bigint;
  /** `p_align`: alignment of the segment, in bytes. */
  align: bigint;
}

/** A section header, its name resolved. */
export interface ElfSection {
  /** The name from the section name table: `.text`, `.uuid` ...; "" for none. */
  name: string;
  /** `sh_type`: {@linkcode SHT_PROGBITS}, {@linkcode SHT_NOTE} ... */
  type: number;
  /** `sh_flags`: the write (1), alloc (2) and execute (4) bits, and more. */
  flags: bigint;
  /** `sh_addr`: the virtual address when loaded; 0 when it is not. */
  addr: bigint;
  /** `sh_offset`: file offset of the contents, in bytes. */
  offset: number;
  /** `sh_size`: bytes of the contents (none in the file for `SHT_NOBITS`). */
  size: number;
  /** `sh_link`: the index of a related section, by type. */
  link: number;
  /** `sh_info`: more information, by type. */
  info: number;
  /** `sh_addralign`: alignment of the contents, in bytes. */
  addralign: bigint;
  /** `sh_entsize`: bytes per entry of a table; 0 when it is not one. */
  entsize: bigint;
}

/** A parsed ELF file: header and tables; contents are read on demand. */
export interface ElfFile {
  /** The file header. */
  header: ElfHeader;
  /** The program headers, in table order. */
  programs: ElfProgram[];
  /** The section headers, in table order, names resolved. */
  sections: ElfSection[];
}

/** Options for the parsers. */
export interface ParseElfOptions {
  /**
   * Size of the whole file, when the bytes given are only its start: tables
   * and contents are checked against it.
   *
   * @default {undefined}
   */
  fileSize?: number;
}

/**
 * Parses the ELF header from the first bytes of a file.
 *
 * Validation follows Go's `NewFile`: magic, class, data encoding, version;
 * then the entry sizes; then `count × entsize` within the file (when its
 * size is known). Extended numbering (`e_phnum == PN_XNUM`, `e_shnum == 0`,
 * `e_shstrndx == SHN_XINDEX`) is resolved by {@linkcode parseElf} and
 * {@linkcode readElf}, which read section 0.
 *
 * @param bytes At least the first 52 (ELF32) or 64 (ELF64) bytes.
 * @param options The file size, when known.
 * @returns The header.
 * @throws {ElfFormatError} When the bytes are not an ELF header.
 *
 * @example Usage
 * ```ts
 * import {
 *   ElfFormatError,
 *   EM_X86_64,
 *   ET_CORE,
 *   parseElfHeader,
 *   TruncatedElfError,
 * } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // An ELF64 little-endian core's header, and nothing after it.
 * const bytes = new Uint8Array(64);
 * const view = new DataView(bytes.buffer);
 * bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // magic, class, data, version
 * view.setUint16(16, ET_CORE, true); // e_type
 * view.setUint16(18, EM_X86_64, true); // e_machine
 * view.setUint32(20, 1, true); // e_version
 * const header = parseElfHeader(bytes);
 * assert.equal(header.class, 64);
 * assert.equal(header.littleEndian, true);
 * assert.equal(header.type, ET_CORE);
 * assert.equal(header.machine, EM_X86_64);
 * assert.throws(() => parseElfHeader(bytes.subarray(0, 10)), TruncatedElfError);
 * assert.throws(
 *   () => parseElfHeader(new TextEncoder().encode("#!/bin/sh")),
 *   ElfFormatError,
 * );
 * ```
 */
export function parseElfHeader(
  bytes: Uint8Array,
  options: ParseElfOptions = {},
): ElfHeader {
  const fileSize = options.fileSize ?? bytes.length;
  const magic = [0x7f, 0x45, 0x4c, 0x46];
  if (magic.some((byte, i) => i < bytes.length && bytes[i] !== byte)) {
    const found = toHex(bytes.subarray(0, 4), " ");
    throw new ElfFormatError(
      `Cannot parse ELF: found magic ${found} at offset 0x0, expected 7f 45 4c 46`,
      0,
    );
  }
  if (bytes.length < 16) {
    throw new TruncatedElfError(
      `Cannot read the ELF identification: only ${bytes.length} bytes, expected at least 16`,
      bytes.length,
    );
  }
  const elfClass = bytes[4];
  if (elfClass !== ELFCLASS32 && elfClass !== ELFCLASS64) {
    throw new ElfFormatError(
      `Cannot parse ELF: found class ${elfClass} at offset 0x4, expected 1 (ELF32) or 2 (ELF64)`,
      4,
    );
  }
  const data = bytes[5];
  if (data !== ELFDATA2LSB && data !== ELFDATA2MSB) {
    throw new ElfFormatError(
      `Cannot parse ELF: found data encoding ${data} at offset 0x5, expected 1 (little-endian) or 2 (big-endian)`,
      5,
    );
  }
  if (bytes[6] !== 1) {
    throw new ElfFormatError(
      `Cannot parse ELF: found version ${bytes[6]} at offset 0x6, expected 1`,
      6,
    );
  }
  const is64 = elfClass === ELFCLASS64;
  const sizes = SIZES[is64 ? 64 : 32];
  const r = new ByteReader(bytes, {
    littleEndian: data === ELFDATA2LSB,
    is64,
    fileSize,
  });
  const w = r.wordSize;
  const o = 24 + 3 * w; // e_flags
  const header: ElfHeader = {
    class: is64 ? 64 : 32,
    littleEndian: data === ELFDATA2LSB,
    osAbi: r.u8(7, "e_ident[EI_OSABI]"),
    abiVersion: r.u8(8, "e_ident[EI_ABIVERSION]"),
    type: r.u16(16, "e_type"),
    machine: r.u16(18, "e_machine"),
    version: r.u32(20, "e_version"),
    entry: r.word(24, "e_entry"),
    phoff: r.size(24 + w, "e_phoff"),
    shoff: r.size(24 + 2 * w, "e_shoff"),
    flags: r.u32(o, "e_flags"),
    ehsize: r.u16(o + 4, "e_ehsize"),
    phentsize: r.u16(o + 6, "e_phentsize"),
    phnum: r.u16(o + 8, "e_phnum"),
    shentsize: r.u16(o + 10, "e_shentsize"),
    shnum: r.u16(o + 12, "e_shnum"),
    shstrndx: r.u16(o + 14, "e_shstrndx"),
  };
  if (header.version !== 1) {
    throw new ElfFormatError(
      `Cannot parse ELF: found e_version ${header.version} at offset 0x14, expected 1`,
      20,
    );
  }
  if (
    (header.phnum > 0 || header.phoff !== 0) && header.phentsize < sizes.phdr
  ) {
    throw new ElfFormatError(
      `Cannot parse ELF: found e_phentsize ${header.phentsize} at offset ${
        hex(o + 6)
      }, expected at least ${sizes.phdr}`,
      o + 6,
    );
  }
  if (
    (header.shnum > 0 || header.shoff !== 0) && header.shentsize < sizes.shdr
  ) {
    throw new ElfFormatError(
      `Cannot parse ELF: found e_shentsize ${header.shentsize} at offset ${
        hex(o + 10)
      }, expected at least ${sizes.shdr}`,
      o + 10,
    );
  }
  if (header.phnum !== PN_XNUM) {
    checkTable(
      "program header table",
      header.phoff,
      header.phnum,
      header.phentsize,
      options.fileSize,
    );
  }
  if (header.shnum !== 0) {
    checkTable(
      "section header table",
      header.shoff,
      header.shnum,
      header.shentsize,
      options.fileSize,
    );
  }
  return header;
}

/** A table's end must lie within the file. */
function checkTable(
  what: string,
  offset: number,
  count: number,
  entsize: number,
  fileSize: number | undefined,
): void {
  const end = offset + count * entsize;
  if (!Number.isSafeInteger(end)) {
    throw new ElfFormatError(
      `Cannot read the ${what}: offset ${
        hex(offset)
      } + ${count} × ${entsize} bytes overflows`,
      offset,
    );
  }
  if (fileSize !== undefined && end > fileSize) {
    throw new TruncatedElfError(
      `Cannot read the ${what}: offset ${
        hex(offset)
      } + ${count} × ${entsize} bytes exceeds file size ${fileSize}`,
      offset,
    );
  }
}

/**
 * The byte range of the program header table.
 *
 * @example Usage
 * ```ts
 * import { parseElfHeader, programTableRange } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array(64);
 * const view = new DataView(bytes.buffer);
 * bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF64, little-endian
 * view.setUint32(20, 1, true); // e_version
 * view.setBigUint64(32, 64n, true); // e_phoff: right after the header
 * view.setUint16(54, 56, true); // e_phentsize
 * view.setUint16(56, 3, true); // e_phnum
 * assert.deepEqual(programTableRange(parseElfHeader(bytes)), {
 *   offset: 64,
 *   length: 3 * 56,
 * });
 * ```
 *
 * @param header The file header.
 * @returns The table's file offset and its length, in bytes.
 */
export function programTableRange(
  header: ElfHeader,
): { offset: number; length: number } {
  return { offset: header.phoff, length: header.phnum * header.phentsize };
}

/**
 * Parses the program header table.
 *
 * @param table The bytes of the table (from `e_phoff`).
 * @param header The file header.
 * @returns The program headers.
 * @throws {ElfFormatError} When the table is short or a field is out of range.
 *
 * @example Usage
 * ```ts
 * import {
 *   parseElfHeader,
 *   parsePrograms,
 *   programTableRange,
 *   PT_LOAD,
 *   readElfAt,
 * } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // The Deno running this is an ELF program (Linux).
 * using file = await Deno.open(Deno.execPath());
 * const header = parseElfHeader(await readElfAt(file, 0, 64));
 * const { offset, length } = programTableRange(header);
 * const programs = parsePrograms(await readElfAt(file, offset, length), header);
 * assert.equal(programs.length, header.phnum);
 * assert.ok(programs.some((program) => program.type === PT_LOAD));
 * ```
 */
export function parsePrograms(
  table: Uint8Array,
  header: ElfHeader,
): ElfProgram[] {
  const r = new ByteReader(table, {
    littleEndian: header.littleEndian,
    is64: header.class === 64,
    baseOffset: header.phoff,
  });
  if (header.phnum > MAX_PROGRAMS) {
    throw new ElfFormatError(
      `Cannot parse ELF: ${header.phnum} program headers, expected at most ${MAX_PROGRAMS}`,
      header.phoff,
    );
  }
  const programs: ElfProgram[] = [];
  for (let i = 0; i < header.phnum; i++) {
    const at = i * header.phentsize;
    const field = (name: string) => `program header ${i} ${name}`;
    programs.push(
      header.class === 64
        ? {
          type: r.u32(at, field("p_type")),
          flags: r.u32(at + 4, field("p_flags")),
          offset: r.size(at + 8, field("p_offset")),
          vaddr: r.u64(at + 16, field("p_vaddr")),
          paddr: r.u64(at + 24, field("p_paddr")),
          filesz: r.size(at + 32, field("p_filesz")),
          memsz: r.u64(at + 40, field("p_memsz")),
          align: r.u64(at + 48, field("p_align")),
        }
        : {
          type: r.u32(at, field("p_type")),
          offset: r.u32(at + 4, field("p_offset")),
          vaddr: BigInt(r.u32(at + 8, field("p_vaddr"))),
          paddr: BigInt(r.u32(at + 12, field("p_paddr"))),
          filesz: r.u32(at + 16, field("p_filesz")),
          memsz: BigInt(r.u32(at + 20, field("p_memsz"))),
          flags: r.u32(at + 24, field("p_flags")),
          align: BigInt(r.u32(at + 28, field("p_align"))),
        },
    );
    const program = programs[i]!;
    if (!Number.isSafeInteger(program.offset + program.filesz)) {
      throw new ElfFormatError(
        `Cannot use program header ${i}: p_offset ${
          hex(program.offset)
        } + p_filesz ${program.filesz} overflows`,
        header.phoff + at,
      );
    }
  }
  return programs;
}

/**
 * Parses the section header table, without names.
 *
 * @param table The bytes of the table (from `e_shoff`).
 * @param header The file header.
 * @param count How many entries to read.
 * @returns The sections, each `name` empty.
 */
function parseSectionTable(
  table: Uint8Array,
  header: ElfHeader,
  count: number,
): (ElfSection & { nameOffset: number })[] {
  const r = new ByteReader(table, {
    littleEndian: header.littleEndian,
    is64: header.class === 64,
    baseOffset: header.shoff,
  });
  const sections: (ElfSection & { nameOffset: number })[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * header.shentsize;
    const field = (name: string) => `section header ${i} ${name}`;
    sections.push(
      header.class === 64
        ? {
          name: "",
          nameOffset: r.u32(at, field("sh_name")),
          type: r.u32(at + 4, field("sh_type")),
          flags: r.u64(at + 8, field("sh_flags")),
          addr: r.u64(at + 16, field("sh_addr")),
          offset: r.size(at + 24, field("sh_offset")),
          size: r.size(at + 32, field("sh_size")),
          link: r.u32(at + 40, field("sh_link")),
          info: r.u32(at + 44, field("sh_info")),
          addralign: r.u64(at + 48, field("sh_addralign")),
          entsize: r.u64(at + 56, field("sh_entsize")),
        }
        : {
          name: "",
          nameOffset: r.u32(at, field("sh_name")),
          type: r.u32(at + 4, field("sh_type")),
          flags: BigInt(r.u32(at + 8, field("sh_flags"))),
          addr: BigInt(r.u32(at + 12, field("sh_addr"))),
          offset: r.u32(at + 16, field("sh_offset")),
          size: r.u32(at + 20, field("sh_size")),
          link: r.u32(at + 24, field("sh_link")),
          info: r.u32(at + 28, field("sh_info")),
          addralign: BigInt(r.u32(at + 32, field("sh_addralign"))),
          entsize: BigInt(r.u32(at + 36, field("sh_entsize"))),
        },
    );
  }
  return sections;
}

/** A read the parser needs: exactly `length` bytes at `offset`. */
interface ReadRequest {
  offset: number;
  length: number;
  what: string;
}

/**
 * The shared parser: header, extended numbering, both tables, then names.
 * It yields the reads it needs, so that one parser serves bytes in memory
 * (answered synchronously) and open files (answered with positioned reads).
 */
function* loadElf(
  head: Uint8Array,
  fileSize: number,
): Generator<ReadRequest, ElfFile, Uint8Array> {
  const readAt = (offset: number, length: number, what: string) => ({
    offset,
    length,
    what,
  });
  const header = parseElfHeader(head, { fileSize });
  const sizes = SIZES[header.class];
  // Extended numbering lives in section 0.
  let first: (ElfSection & { nameOffset: number }) | undefined;
  if (header.shoff !== 0) {
    checkTable(
      "section header table",
      header.shoff,
      1,
      header.shentsize,
      fileSize,
    );
    first = parseSectionTable(
      yield readAt(header.shoff, sizes.shdr, "section header 0"),
      header,
      1,
    )[0];
  }
  if (header.shnum === 0 && first !== undefined) {
    if (first.size > MAX_SECTIONS) {
      throw new ElfFormatError(
        `Cannot parse ELF: section 0 declares ${first.size} sections, expected at most ${MAX_SECTIONS}`,
        header.shoff,
      );
    }
    header.shnum = first.size;
    checkTable(
      "section header table",
      header.shoff,
      header.shnum,
      header.shentsize,
      fileSize,
    );
  }
  if (header.phnum === PN_XNUM) {
    if (first === undefined) {
      throw new ElfFormatError(
        `Cannot parse ELF: e_phnum is PN_XNUM but there is no section 0 to hold the count`,
        0,
      );
    }
    header.phnum = first.info;
    checkTable(
      "program header table",
      header.phoff,
      header.phnum,
      header.phentsize,
      fileSize,
    );
  }
  if (header.shstrndx === SHN_XINDEX && first !== undefined) {
    header.shstrndx = first.link;
  }

  const programs = header.phnum === 0 ? [] : parsePrograms(
    yield readAt(
      header.phoff,
      header.phnum * header.phentsize,
      "the program header table",
    ),
    header,
  );
  const raw = header.shnum === 0 ? [] : parseSectionTable(
    yield readAt(
      header.shoff,
      header.shnum * header.shentsize,
      "the section header table",
    ),
    header,
    header.shnum,
  );
  for (const [i, section] of raw.entries()) {
    if (
      section.type !== SHT_NOBITS && section.offset + section.size > fileSize
    ) {
      throw new TruncatedElfError(
        `Cannot use section header ${i}: sh_offset ${
          hex(section.offset)
        } + sh_size ${section.size} exceeds file size ${fileSize}`,
        header.shoff + i * header.shentsize,
      );
    }
  }
  if (raw.length > 0 && header.shstrndx !== 0) {
    const table = raw[header.shstrndx];
    if (table === undefined) {
      throw new ElfFormatError(
        `Cannot parse ELF: e_shstrndx ${header.shstrndx} is not a section, expected an index below ${raw.length}`,
        0,
      );
    }
    if (table.type !== SHT_STRTAB) {
      throw new ElfFormatError(
        `Cannot parse ELF: section ${header.shstrndx} (e_shstrndx) has type ${table.type}, expected SHT_STRTAB (3)`,
        header.shoff + header.shstrndx * header.shentsize,
      );
    }
    const length = Math.min(table.size, MAX_SHSTRTAB);
    const names = length === 0
      ? new Uint8Array(0)
      : yield readAt(table.offset, length, "the section name table");
    const r = new ByteReader(names, {
      littleEndian: header.littleEndian,
      is64: false,
      baseOffset: table.offset,
    });
    for (const [i, section] of raw.entries()) {
      if (section.nameOffset === 0 && i === 0) continue;
      if (section.nameOffset >= names.length) {
        throw new ElfFormatError(
          `Cannot name section ${i}: sh_name ${section.nameOffset} is past the end of the ${names.length}-byte section name table`,
          header.shoff + i * header.shentsize,
        );
      }
      section.name = r.cString(section.nameOffset, 4096, `section ${i} name`);
    }
  }
  const sections = raw.map(({ nameOffset: _, ...section }) => section);
  return { header, programs, sections };
}

/**
 * Parses an ELF file held in memory.
 *
 * @param bytes The whole file.
 * @returns Header, program headers and sections with their names.
 * @throws {ElfFormatError} When the bytes are not a well-formed ELF file;
 * {@linkcode TruncatedElfError} when it is cut short.
 *
 * @example Usage
 * ```ts
 * import {
 *   findSection,
 *   parseElf,
 *   sectionData,
 *   SHT_PROGBITS,
 *   SHT_STRTAB,
 * } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // An ELF64 file of three sections: none, the section names, and `.uuid`.
 * const bytes = new Uint8Array(296);
 * const view = new DataView(bytes.buffer);
 * const text = new TextEncoder();
 * bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF64, little-endian
 * view.setUint32(20, 1, true); // e_version
 * view.setBigUint64(40, 104n, true); // e_shoff
 * view.setUint16(58, 64, true); // e_shentsize
 * view.setUint16(60, 3, true); // e_shnum
 * view.setUint16(62, 1, true); // e_shstrndx
 * bytes.set(text.encode("\0.shstrtab\0.uuid\0"), 64);
 * bytes.set(text.encode("0123456789abcdef"), 81);
 * const section = (
 *   i: number,
 *   name: number,
 *   type: number,
 *   offset: number,
 *   size: number,
 * ) => {
 *   const at = 104 + 64 * i;
 *   view.setUint32(at, name, true); // sh_name
 *   view.setUint32(at + 4, type, true); // sh_type
 *   view.setBigUint64(at + 24, BigInt(offset), true); // sh_offset
 *   view.setBigUint64(at + 32, BigInt(size), true); // sh_size
 * };
 * section(1, 1, SHT_STRTAB, 64, 17);
 * section(2, 11, SHT_PROGBITS, 81, 16);
 *
 * const elf = parseElf(bytes);
 * assert.deepEqual(elf.sections.map((s) => s.name), ["", ".shstrtab", ".uuid"]);
 * const uuid = findSection(elf, ".uuid");
 * assert.ok(uuid !== undefined);
 * assert.equal(new TextDecoder().decode(sectionData(bytes, uuid)), "0123456789abcdef");
 * assert.equal(findSection(elf, ".note.package"), undefined);
 * ```
 */
export function parseElf(bytes: Uint8Array): ElfFile {
  const steps = loadElf(bytes, bytes.length);
  let step = steps.next();
  while (!step.done) {
    const { offset, length, what } = step.value;
    step = steps.next(sliceAt(bytes, offset, length, what));
  }
  return step.value;
}

function sliceAt(
  bytes: Uint8Array,
  offset: number,
  length: number,
  what: string,
): Uint8Array {
  if (offset + length > bytes.length) {
    throw new TruncatedElfError(
      `Cannot read ${what}: offset ${
        hex(offset)
      } + ${length} bytes exceeds file size ${bytes.length}`,
      offset,
    );
  }
  return bytes.subarray(offset, offset + length);
}

/**
 * Parses an open ELF file with positioned reads: only the header, the tables
 * and the section names are read, never the whole file.
 *
 * @param file The open file.
 * @returns Header, program headers and sections with their names.
 * @throws {ElfFormatError} When the file is not a well-formed ELF file.
 *
 * @example Usage
 * ```ts
 * import { ET_DYN, ET_EXEC, readElf } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // The Deno running this is an ELF program (Linux): about 100 MB, of
 * // which only the headers, the tables and the section names are read.
 * using file = await Deno.open(Deno.execPath());
 * const elf = await readElf(file);
 * assert.ok([ET_EXEC, ET_DYN].includes(elf.header.type));
 * assert.equal(elf.programs.length, elf.header.phnum);
 * assert.ok(elf.sections.some((section) => section.name === ".text"));
 * ```
 */
export async function readElf(file: Deno.FsFile): Promise<ElfFile> {
  const { size } = await file.stat();
  const head = await readElfAt(file, 0, Math.min(size, 64));
  const steps = loadElf(head, size);
  let step = steps.next();
  while (!step.done) {
    const { offset, length } = step.value;
    step = steps.next(await readElfAt(file, offset, length));
  }
  return step.value;
}

/**
 * Reads exactly `length` bytes at `offset` of an open ELF file.
 *
 * @example Usage
 * ```ts
 * import { readElfAt, TruncatedElfError } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * using file = await Deno.open(Deno.execPath());
 * const { size } = await file.stat();
 * assert.deepEqual(
 *   await readElfAt(file, 0, 4),
 *   new Uint8Array([0x7f, 0x45, 0x4c, 0x46]),
 * );
 * await assert.rejects(readElfAt(file, size - 2, 4), TruncatedElfError);
 * ```
 *
 * @param file The open file.
 * @param offset Where to start, in bytes.
 * @param length How many bytes.
 * @returns The bytes.
 * @throws {TruncatedElfError} When the file ends first.
 */
export async function readElfAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  try {
    return await readFileAt(file, offset, length);
  } catch (error) {
    if (!(error instanceof ShortReadError)) throw error;
    throw new TruncatedElfError(
      `Cannot read ${length} bytes at offset ${
        hex(offset)
      }: the file ends after ${error.offset}`,
      error.offset,
    );
  }
}

/**
 * Finds a section by name.
 *
 * @example Usage
 * ```ts
 * import { findSection, readElf, SHT_PROGBITS } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // The Deno running this is an ELF program (Linux).
 * using file = await Deno.open(Deno.execPath());
 * const elf = await readElf(file);
 * assert.equal(findSection(elf, ".text")?.type, SHT_PROGBITS);
 * // Deno is not stamped.
 * assert.equal(findSection(elf, ".uuid"), undefined);
 * ```
 *
 * @param elf The parsed file.
 * @param name The section's name, like `.uuid`.
 * @returns The first section of that name, or undefined when there is none
 * (absence is not an error).
 */
export function findSection(
  elf: ElfFile,
  name: string,
): ElfSection | undefined {
  return elf.sections.find((section) => section.name === name);
}

/**
 * The contents of a section of an in-memory file (a view, not a copy).
 *
 * @example Usage
 * ```ts
 * import {
 *   type ElfSection,
 *   sectionData,
 *   SHT_NOBITS,
 *   SHT_PROGBITS,
 *   TruncatedElfError,
 * } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("ELF?0123456789abcdef");
 * const uuid: ElfSection = {
 *   name: ".uuid",
 *   type: SHT_PROGBITS,
 *   flags: 0n,
 *   addr: 0n,
 *   offset: 4,
 *   size: 16,
 *   link: 0,
 *   info: 0,
 *   addralign: 1n,
 *   entsize: 0n,
 * };
 * assert.equal(new TextDecoder().decode(sectionData(bytes, uuid)), "0123456789abcdef");
 * // SHT_NOBITS takes no bytes of the file.
 * assert.equal(sectionData(bytes, { ...uuid, type: SHT_NOBITS }).length, 0);
 * assert.throws(() => sectionData(bytes, { ...uuid, size: 64 }), TruncatedElfError);
 * ```
 *
 * @param bytes The whole file.
 * @param section One of its sections.
 * @returns The section's bytes; empty for `SHT_NOBITS`.
 * @throws {ElfFormatError} When the section lies outside the bytes.
 */
export function sectionData(
  bytes: Uint8Array,
  section: ElfSection,
): Uint8Array {
  if (section.type === SHT_NOBITS) return new Uint8Array(0);
  return sliceAt(
    bytes,
    section.offset,
    section.size,
    `section '${section.name}'`,
  );
}

/**
 * The bytes a core (or any file) must have to hold everything its headers
 * declare: the end of the furthest segment, section or table.
 *
 * @example Usage
 * ```ts
 * import { expectedFileSize, readElf } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // A linked program ends with its section header table.
 * using file = await Deno.open(Deno.execPath());
 * const elf = await readElf(file);
 * assert.equal(expectedFileSize(elf), (await file.stat()).size);
 * ```
 *
 * @param elf The parsed headers.
 * @returns The size in bytes.
 */
export function expectedFileSize(elf: ElfFile): number {
  const { header } = elf;
  let end: number = SIZES[header.class].ehdr;
  end = Math.max(end, header.phoff + header.phnum * header.phentsize);
  if (header.shnum > 0) {
    end = Math.max(end, header.shoff + header.shnum * header.shentsize);
  }
  for (const program of elf.programs) {
    end = Math.max(end, program.offset + program.filesz);
  }
  for (const section of elf.sections) {
    if (section.type !== SHT_NOBITS) {
      end = Math.max(end, section.offset + section.size);
    }
  }
  return end;
}

const TYPE_NAMES: Record<number, string> = {
  [ET_REL]: "ET_REL",
  [ET_EXEC]: "ET_EXEC",
  [ET_DYN]: "ET_DYN",
  [ET_CORE]: "ET_CORE",
};

const MACHINE_NAMES: Record<number, string> = {
  [EM_386]: "EM_386",
  [EM_MIPS]: "EM_MIPS",
  [EM_PPC]: "EM_PPC",
  [EM_PPC64]: "EM_PPC64",
  [EM_S390]: "EM_S390",
  [EM_ARM]: "EM_ARM",
  [EM_X86_64]: "EM_X86_64",
  [EM_AARCH64]: "EM_AARCH64",
  [EM_RISCV]: "EM_RISCV",
  [EM_LOONGARCH]: "EM_LOONGARCH",
};

const PROGRAM_NAMES: Record<number, string> = {
  0: "PT_NULL",
  [PT_LOAD]: "PT_LOAD",
  [PT_DYNAMIC]: "PT_DYNAMIC",
  [PT_INTERP]: "PT_INTERP",
  [PT_NOTE]: "PT_NOTE",
  5: "PT_SHLIB",
  [PT_PHDR]: "PT_PHDR",
  7: "PT_TLS",
  0x6474e550: "PT_GNU_EH_FRAME",
  0x6474e551: "PT_GNU_STACK",
  0x6474e552: "PT_GNU_RELRO",
  0x6474e553: "PT_GNU_PROPERTY",
};

/**
 * `e_type` by name: `"ET_CORE"`, or the number in hex when unknown.
 *
 * @example Usage
 * ```ts
 * import { ET_CORE, typeName } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeName(ET_CORE), "ET_CORE");
 * assert.equal(typeName(0xfe00), "0xfe00");
 * ```
 *
 * @param type The `e_type` value.
 * @returns Its name.
 */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? hex(type);
}

/**
 * `e_machine` by name: `"EM_X86_64"`, or the number in hex when unknown.
 *
 * @example Usage
 * ```ts
 * import { EM_AARCH64, machineName } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(machineName(EM_AARCH64), "EM_AARCH64");
 * assert.equal(machineName(0x1234), "0x1234");
 * ```
 *
 * @param machine The `e_machine` value.
 * @returns Its name.
 */
export function machineName(machine: number): string {
  return MACHINE_NAMES[machine] ?? hex(machine);
}

/**
 * `p_type` by name: `"PT_NOTE"`, or the number in hex when unknown.
 *
 * @example Usage
 * ```ts
 * import { programTypeName, PT_NOTE } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(programTypeName(PT_NOTE), "PT_NOTE");
 * assert.equal(programTypeName(0x6474e551), "PT_GNU_STACK");
 * assert.equal(programTypeName(0x70000000), "0x70000000");
 * ```
 *
 * @param type The `p_type` value.
 * @returns Its name.
 */
export function programTypeName(type: number): string {
  return PROGRAM_NAMES[type] ?? hex(type);
}

export { safeNumber };
