/**
 * ELF notes: walking `PT_NOTE`/`SHT_NOTE` data, and decoding what a core's
 * notes say about the crash (`NT_PRSTATUS`, `NT_PRPSINFO`, `NT_SIGINFO`,
 * `NT_AUXV`, `NT_FILE`) and a program's GNU build-id and package metadata.
 *
 * Go's `debug/elf` has no note iterator; this is our own, with every size
 * bounds-checked.
 *
 * @module
 */

import { ByteReader, hex } from "./_byte_reader.ts";
import { ElfFormatError } from "./errors.ts";
import { type ElfHeader, EM_MIPS } from "./elf.ts";
import { toHex } from "../util/mod.ts";

/** Process status, one per thread (owner "CORE"). */
export const NT_PRSTATUS = 1;
/** Process info: command name and arguments (owner "CORE"). */
export const NT_PRPSINFO = 3;
/** The auxiliary vector (owner "CORE"). */
export const NT_AUXV = 6;
/** The signal that caused the dump (owner "CORE"). */
export const NT_SIGINFO = 0x53494749;
/** Files mapped into memory (owner "CORE"). */
export const NT_FILE = 0x46494c45;
/** aarch64's pointer authentication masks (owner "LINUX"). */
export const NT_ARM_PAC_MASK = 0x406;
/** GNU build-id (owner "GNU"). */
export const NT_GNU_BUILD_ID = 3;
/** Package metadata, JSON (owner "FDO"), as systemd defined it. */
export const NT_FDO_PACKAGING_METADATA = 0xcafe1a7e;

/** `AT_EXECFN` in the auxiliary vector: address of the executed file name. */
export const AT_EXECFN = 31;
/** `AT_ENTRY`: the program's entry point. */
export const AT_ENTRY = 9;
/** `AT_PAGESZ`: the page size. */
export const AT_PAGESZ = 6;
/** `AT_SYSINFO_EHDR`: address of the vDSO's ELF header. */
export const AT_SYSINFO_EHDR = 33;

/** Most notes walked in one note area. */
const MAX_NOTES = 100_000;

/** One note. */
export interface ElfNote {
  /** Owner name, without its NUL: "CORE", "GNU", "LINUX" ... */
  name: string;
  /** The note's type, by its owner: {@linkcode NT_PRSTATUS} ... */
  type: number;
  /** The descriptor (a view, not a copy). */
  desc: Uint8Array;
  /** File offset of the note header. */
  offset: number;
}

/** Options for {@linkcode parseNotes}. */
export interface ParseNotesOptions {
  /** The file's byte order: true for little-endian. */
  littleEndian: boolean;
  /**
   * File offset of the first byte, for messages and {@linkcode ElfNote.offset}.
   *
   * @default {0}
   */
  baseOffset?: number;
  /**
   * Alignment of names and descriptors: 4, or 8 for areas aligned to 8
   * (`.note.gnu.property` in ELF64).
   *
   * @default {4}
   */
  align?: 4 | 8;
}

/**
 * Walks the notes in a note area.
 *
 * @param bytes The note area (a `PT_NOTE` segment or `SHT_NOTE` section).
 * @param options Byte order, offset and alignment.
 * @returns The notes, in order.
 * @throws {ElfFormatError} When a note's sizes run past the area.
 *
 * @example Usage
 * ```ts
 * import { NT_GNU_BUILD_ID, parseNotes } from "./notes.ts";
 * import { ElfFormatError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * // One note: owner "GNU", a 4-byte build-id.
 * const area = new Uint8Array(20);
 * const view = new DataView(area.buffer);
 * view.setUint32(0, 4, true); // namesz, NUL included
 * view.setUint32(4, 4, true); // descsz
 * view.setUint32(8, NT_GNU_BUILD_ID, true); // type
 * area.set(new TextEncoder().encode("GNU\0"), 12);
 * area.set([0xde, 0xad, 0xbe, 0xef], 16);
 *
 * const notes = parseNotes(area, { littleEndian: true, baseOffset: 0x2e4 });
 * assert.equal(notes.length, 1);
 * assert.equal(notes[0]?.name, "GNU");
 * assert.equal(notes[0]?.type, NT_GNU_BUILD_ID);
 * assert.deepEqual(notes[0]?.desc, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
 * assert.equal(notes[0]?.offset, 0x2e4);
 * // A descriptor that runs past the area.
 * view.setUint32(4, 8, true);
 * assert.throws(() => parseNotes(area, { littleEndian: true }), ElfFormatError);
 * ```
 */
export function parseNotes(
  bytes: Uint8Array,
  options: ParseNotesOptions,
): ElfNote[] {
  const { littleEndian, baseOffset = 0, align = 4 } = options;
  const r = new ByteReader(bytes, { littleEndian, is64: false, baseOffset });
  const pad = (n: number) => (n + align - 1) & ~(align - 1);
  const notes: ElfNote[] = [];
  let at = 0;
  while (at + 12 <= bytes.length) {
    if (notes.length >= MAX_NOTES) {
      throw new ElfFormatError(
        `Cannot walk notes: more than ${MAX_NOTES} notes at offset ${
          hex(baseOffset)
        }`,
        baseOffset + at,
      );
    }
    const namesz = r.u32(at, "note namesz");
    const descsz = r.u32(at + 4, "note descsz");
    const type = r.u32(at + 8, "note type");
    const nameAt = at + 12;
    // The descriptor starts at the next aligned offset after the name; with
    // 8-byte alignment a 4-byte name ("GNU\0") is not padded.
    const descAt = pad(nameAt + namesz);
    if (descAt > bytes.length || descAt + descsz > bytes.length) {
      throw new ElfFormatError(
        `Cannot read note at offset ${
          hex(baseOffset + at)
        }: namesz ${namesz} and descsz ${descsz} run past the ${bytes.length}-byte note area`,
        baseOffset + at,
      );
    }
    const name = namesz === 0 ? "" : r.cString(nameAt, namesz, "note name");
    notes.push({
      name,
      type,
      desc: r.bytes(descAt, descsz, "note descriptor"),
      offset: baseOffset + at,
    });
    at = descAt + pad(descsz);
  }
  return notes;
}

/** A file mapped into the crashed process (from `NT_FILE`). */
export interface MappedFile {
  /** First address of the mapping. */
  start: bigint;
  /** End of the mapping: the first address after it. */
  end: bigint;
  /** Offset in the file, in bytes. */
  fileOffset: bigint;
  /** The file's path, as the kernel wrote it. */
  path: string;
}

/** `NT_PRSTATUS` of one thread. */
export interface ThreadStatus {
  /** Thread id. */
  tid: number;
  /** The signal the thread was stopped by (`pr_cursig`). */
  signal: number;
  /**
   * The general registers (`pr_reg`), as words in the kernel's order;
   * {@linkcode threadRegisters} names them.
   */
  registers: bigint[];
}

/** `NT_SIGINFO`. */
export interface SignalInfo {
  /** `si_signo`: the signal's number. */
  signo: number;
  /** `si_errno`: an error number sent with it, usually 0. */
  errno: number;
  /** `si_code`: why it was sent (`SEGV_MAPERR` ...); 0 or below from a process. */
  code: number;
  /** The faulting address, for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP. */
  address?: bigint;
}

/** What a core's notes say. */
export interface CoreNotes {
  /** One per thread; the first is the thread that crashed. */
  threads: ThreadStatus[];
  /** From `NT_PRPSINFO`. */
  process?: {
    /** The process id. */
    pid: number;
    /** The parent's process id. */
    ppid: number;
    /** The real user id. */
    uid: number;
    /** The real group id. */
    gid: number;
    /** The command name (at most 15 bytes). */
    comm: string;
    /** The first 80 bytes of the argument list, spaces between arguments. */
    args: string;
  };
  /** From `NT_SIGINFO`: the signal that caused the dump. */
  signal?: SignalInfo;
  /** The auxiliary vector, type to value. */
  auxv: Map<number, bigint>;
  /** Mapped files, in address order as the kernel lists them. */
  files: MappedFile[];
  /** `NT_FILE`'s page size, when present. */
  pageSize?: number;
  /**
   * aarch64's `NT_ARM_PAC_MASK`: the bits of a code address that hold a
   * pointer authentication code, when the process used them.
   */
  pacMask?: bigint;
}

/** Signals whose `siginfo` carries the faulting address. */
const FAULT_SIGNALS = new Set([4, 5, 7, 8, 11]);

/**
 * Decodes the notes of a core file. Unknown notes are skipped; a known note
 * that is too short throws.
 *
 * @param notes The notes of the core's `PT_NOTE` segments.
 * @param header The core's ELF header (class, byte order, machine).
 * @returns The decoded facts.
 * @throws {ElfFormatError} When a known note is malformed.
 *
 * @example Usage
 * ```ts
 * import { decodeCoreNotes, NT_PRSTATUS, NT_SIGINFO } from "./notes.ts";
 * import { EM_X86_64, ET_CORE, parseElfHeader } from "./elf.ts";
 * import assert from "node:assert/strict";
 *
 * // An ELF64 little-endian core's header.
 * const bytes = new Uint8Array(64);
 * const view = new DataView(bytes.buffer);
 * bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
 * view.setUint16(16, ET_CORE, true);
 * view.setUint16(18, EM_X86_64, true);
 * view.setUint32(20, 1, true);
 * const header = parseElfHeader(bytes);
 *
 * // A thread stopped by SIGSEGV (11), and the fault's siginfo.
 * const status = new Uint8Array(336);
 * new DataView(status.buffer).setUint16(12, 11, true); // pr_cursig
 * new DataView(status.buffer).setUint32(32, 4242, true); // pr_pid
 * const siginfo = new Uint8Array(128);
 * new DataView(siginfo.buffer).setInt32(0, 11, true); // si_signo
 * new DataView(siginfo.buffer).setInt32(8, 1, true); // si_code: SEGV_MAPERR
 * new DataView(siginfo.buffer).setBigUint64(16, 0xdeadn, true); // si_addr
 * const notes = decodeCoreNotes([
 *   { name: "CORE", type: NT_PRSTATUS, desc: status, offset: 0 },
 *   { name: "CORE", type: NT_SIGINFO, desc: siginfo, offset: 356 },
 *   { name: "LINUX", type: 0x202, desc: new Uint8Array(8), offset: 504 },
 * ], header);
 * assert.deepEqual(notes.threads, [{ tid: 4242, signal: 11, registers: new Array(27).fill(0n) }]);
 * assert.deepEqual(notes.signal, { signo: 11, errno: 0, code: 1, address: 0xdeadn });
 * assert.equal(notes.process, undefined);
 * ```
 */
export function decodeCoreNotes(
  notes: ElfNote[],
  header: ElfHeader,
): CoreNotes {
  const result: CoreNotes = { threads: [], auxv: new Map(), files: [] };
  const is64 = header.class === 64;
  for (const note of notes) {
    const r = new ByteReader(note.desc, {
      littleEndian: header.littleEndian,
      is64,
      baseOffset: note.offset,
    });
    if (note.name === "LINUX" && note.type === NT_ARM_PAC_MASK) {
      // A short one is no reason to lose the other notes.
      if (r.length >= 16) {
        result.pacMask = r.u64(8, "NT_ARM_PAC_MASK insn_mask");
      }
      continue;
    }
    if (note.name !== "CORE") continue;
    switch (note.type) {
      case NT_PRSTATUS:
        result.threads.push({
          signal: r.u16(12, "NT_PRSTATUS pr_cursig"),
          tid: r.u32(is64 ? 32 : 24, "NT_PRSTATUS pr_pid"),
          registers: prRegisters(r),
        });
        break;
      case NT_PRPSINFO:
        result.process = decodePrpsinfo(r);
        break;
      case NT_SIGINFO:
        result.signal = decodeSiginfo(r, header.machine === EM_MIPS);
        break;
      case NT_AUXV:
        for (
          let at = 0;
          at + 2 * r.wordSize <= r.length;
          at += 2 * r.wordSize
        ) {
          const type = Number(r.word(at, "NT_AUXV a_type"));
          if (type === 0) break;
          result.auxv.set(type, r.word(at + r.wordSize, "NT_AUXV a_val"));
        }
        break;
      case NT_FILE: {
        const files = decodeFileNote(r);
        result.files = files.files;
        result.pageSize = files.pageSize;
        break;
      }
    }
  }
  return result;
}

/**
 * `pr_reg` of `struct elf_prstatus`: the words after the times (at 112 in
 * ELF64, 72 in ELF32) up to `pr_fpvalid`, the int at the end.
 */
function prRegisters(r: ByteReader): bigint[] {
  const from = r.is64 ? 112 : 72;
  const count = Math.max(0, Math.floor((r.length - from - 4) / r.wordSize));
  const words: bigint[] = [];
  for (let i = 0; i < count; i++) {
    words.push(r.word(from + i * r.wordSize, "NT_PRSTATUS pr_reg"));
  }
  return words;
}

/**
 * `struct elf_prpsinfo`, told apart by size: 136 bytes in ELF64; in ELF32,
 * 124 where uid and gid are 16 bits (i386, arm) and 128 where they are 32.
 */
function decodePrpsinfo(r: ByteReader): NonNullable<CoreNotes["process"]> {
  const text = (at: number, max: number, field: string) =>
    r.cString(at, max, field).replace(/\s+$/, "");
  if (r.is64) {
    return {
      uid: r.u32(16, "NT_PRPSINFO pr_uid"),
      gid: r.u32(20, "NT_PRPSINFO pr_gid"),
      pid: r.u32(24, "NT_PRPSINFO pr_pid"),
      ppid: r.u32(28, "NT_PRPSINFO pr_ppid"),
      comm: text(40, 16, "NT_PRPSINFO pr_fname"),
      args: text(56, 80, "NT_PRPSINFO pr_psargs"),
    };
  }
  const wide = r.length >= 128;
  return {
    uid: wide ? r.u32(8, "NT_PRPSINFO pr_uid") : r.u16(8, "NT_PRPSINFO pr_uid"),
    gid: wide
      ? r.u32(12, "NT_PRPSINFO pr_gid")
      : r.u16(10, "NT_PRPSINFO pr_gid"),
    pid: r.u32(wide ? 16 : 12, "NT_PRPSINFO pr_pid"),
    ppid: r.u32(wide ? 20 : 16, "NT_PRPSINFO pr_ppid"),
    comm: text(wide ? 32 : 28, 16, "NT_PRPSINFO pr_fname"),
    args: text(wide ? 48 : 44, 80, "NT_PRPSINFO pr_psargs"),
  };
}

/** `siginfo_t`: MIPS swaps `si_code` and `si_errno`. */
function decodeSiginfo(r: ByteReader, mips: boolean): SignalInfo {
  const signo = r.i32(0, "NT_SIGINFO si_signo");
  const info: SignalInfo = {
    signo,
    errno: r.i32(mips ? 8 : 4, "NT_SIGINFO si_errno"),
    code: r.i32(mips ? 4 : 8, "NT_SIGINFO si_code"),
  };
  if (FAULT_SIGNALS.has(signo)) {
    info.address = r.word(r.is64 ? 16 : 12, "NT_SIGINFO si_addr");
  }
  return info;
}

/** `NT_FILE`: count, page size, count × (start, end, page offset), names. */
function decodeFileNote(
  r: ByteReader,
): { files: MappedFile[]; pageSize: number } {
  const w = r.wordSize;
  const count = r.size(0, "NT_FILE count");
  const pageSize = r.size(w, "NT_FILE page_size");
  const namesAt = 2 * w + count * 3 * w;
  if (namesAt > r.length) {
    throw new ElfFormatError(
      `Cannot read NT_FILE: ${count} entries need ${namesAt} bytes, the note has ${r.length}`,
      0,
    );
  }
  const names = new TextDecoder().decode(
    r.bytes(namesAt, r.length - namesAt, "NT_FILE names"),
  )
    .split("\0");
  const files: MappedFile[] = [];
  for (let i = 0; i < count; i++) {
    const at = 2 * w + i * 3 * w;
    files.push({
      start: r.word(at, "NT_FILE start"),
      end: r.word(at + w, "NT_FILE end"),
      fileOffset: r.word(at + 2 * w, "NT_FILE file_ofs") * BigInt(pageSize),
      path: names[i] ?? "",
    });
  }
  return { files, pageSize };
}

/**
 * Finds the GNU build-id among notes.
 *
 * @param notes Notes of a program or a module.
 * @returns The build-id in lower-case hex, or undefined.
 *
 * @example Usage
 * ```ts
 * import { buildIdOf, NT_GNU_BUILD_ID } from "./notes.ts";
 * import assert from "node:assert/strict";
 *
 * const id = new Uint8Array([0x96, 0xe7, 0x63, 0x0f]);
 * const note = { name: "GNU", type: NT_GNU_BUILD_ID, desc: id, offset: 0 };
 * assert.equal(buildIdOf([note]), "96e7630f");
 * assert.equal(buildIdOf([{ ...note, name: "CORE" }]), undefined);
 * ```
 */
export function buildIdOf(notes: ElfNote[]): string | undefined {
  const note = notes.find((n) =>
    n.name === "GNU" && n.type === NT_GNU_BUILD_ID
  );
  if (note === undefined || note.desc.length === 0) return undefined;
  return toHex(note.desc);
}

/**
 * Finds the package metadata note (`.note.package`, owner "FDO") and returns
 * its JSON text, without the terminating NUL.
 *
 * @example Usage
 * ```ts
 * import { NT_FDO_PACKAGING_METADATA, packageMetadataOf } from "./notes.ts";
 * import assert from "node:assert/strict";
 *
 * const json = '{"type":"rpm","name":"app","version":"1.2"}';
 * const desc = new TextEncoder().encode(`${json}\0\0`);
 * const note = { name: "FDO", type: NT_FDO_PACKAGING_METADATA, desc, offset: 0 };
 * assert.equal(packageMetadataOf([note]), json);
 * assert.equal(packageMetadataOf([]), undefined);
 * ```
 *
 * @param notes Notes of a program.
 * @returns The JSON text, or undefined when there is no such note.
 */
export function packageMetadataOf(notes: ElfNote[]): string | undefined {
  const note = notes.find((n) =>
    n.name === "FDO" && n.type === NT_FDO_PACKAGING_METADATA
  );
  if (note === undefined) return undefined;
  const end = note.desc.indexOf(0);
  return new TextDecoder().decode(
    end === -1 ? note.desc : note.desc.subarray(0, end),
  );
}
