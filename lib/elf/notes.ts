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
  type: number;
  /** The descriptor (a view, not a copy). */
  desc: Uint8Array;
  /** File offset of the note header. */
  offset: number;
}

/** Options for {@linkcode parseNotes}. */
export interface ParseNotesOptions {
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
 * ```ts ignore
 * import { parseNotes } from "./notes.ts";
 * for (const note of parseNotes(area, { littleEndian: true })) {
 *   // note.name, note.type, note.desc
 * }
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
  start: bigint;
  end: bigint;
  /** Offset in the file, in bytes. */
  fileOffset: bigint;
  path: string;
}

/** `NT_PRSTATUS` of one thread. */
export interface ThreadStatus {
  /** Thread id. */
  tid: number;
  /** The signal the thread was stopped by (`pr_cursig`). */
  signal: number;
}

/** `NT_SIGINFO`. */
export interface SignalInfo {
  signo: number;
  errno: number;
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
    pid: number;
    ppid: number;
    uid: number;
    gid: number;
    /** The command name (at most 15 bytes). */
    comm: string;
    /** The first 80 bytes of the argument list, spaces between arguments. */
    args: string;
  };
  signal?: SignalInfo;
  /** The auxiliary vector, type to value. */
  auxv: Map<number, bigint>;
  /** Mapped files, in address order as the kernel lists them. */
  files: MappedFile[];
  /** `NT_FILE`'s page size, when present. */
  pageSize?: number;
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
 */
export function decodeCoreNotes(
  notes: ElfNote[],
  header: ElfHeader,
): CoreNotes {
  const result: CoreNotes = { threads: [], auxv: new Map(), files: [] };
  const is64 = header.class === 64;
  for (const note of notes) {
    if (note.name !== "CORE") continue;
    const r = new ByteReader(note.desc, {
      littleEndian: header.littleEndian,
      is64,
      baseOffset: note.offset,
    });
    switch (note.type) {
      case NT_PRSTATUS:
        result.threads.push({
          signal: r.u16(12, "NT_PRSTATUS pr_cursig"),
          tid: r.u32(is64 ? 32 : 24, "NT_PRSTATUS pr_pid"),
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
 * ```ts ignore
 * import { buildIdOf, parseNotes } from "./notes.ts";
 * buildIdOf(parseNotes(area, { littleEndian: true })); // "96e763..."
 * ```
 */
export function buildIdOf(notes: ElfNote[]): string | undefined {
  const note = notes.find((n) =>
    n.name === "GNU" && n.type === NT_GNU_BUILD_ID
  );
  if (note === undefined || note.desc.length === 0) return undefined;
  return Array.from(note.desc, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Finds the package metadata note (`.note.package`, owner "FDO") and returns
 * its JSON text, without the terminating NUL.
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
