/**
 * Reads a core's ELF structure in flight, while the core streams through to
 * the compressor: one pass, no temporary copy, bounded memory.
 *
 * A kernel core is laid out header, program headers, notes, then the load
 * segments. The inspector keeps only the byte ranges it needs, in that
 * order: the header, the program header table, the `PT_NOTE` segments, and
 * then, for each file the notes say was mapped from offset 0, the first page
 * of that mapping in the load segments, whose ELF header leads to the
 * module's GNU build-id (as `eu-unstrip -n --core` finds it).
 *
 * It passes every byte through unchanged and never fails the stream: a core
 * that is not ELF, or is malformed, is still stored, and the report says
 * what was wrong.
 *
 * @module
 */

import {
  type ElfHeader,
  type ElfProgram,
  expectedFileSize,
  parseElfHeader,
  parsePrograms,
  PN_XNUM,
  PT_LOAD,
  PT_NOTE,
  readElfAt,
} from "./elf.ts";
import { ElfFormatError } from "./errors.ts";
import {
  AT_ENTRY,
  AT_PAGESZ,
  AT_SYSINFO_EHDR,
  buildIdOf,
  type CoreNotes,
  decodeCoreNotes,
  type ElfNote,
  parseNotes,
} from "./notes.ts";
import { threadRegisters } from "./registers.ts";
import { errorText } from "../util/mod.ts";

/** Largest program header table kept (65535 entries of 64 bytes). */
const MAX_PROGRAM_TABLE = 65535 * 64;
/** Largest total of note data kept. */
const MAX_NOTE_BYTES = 16 << 20;
/** Most module pages kept, and the largest page. */
const MAX_MODULES = 4096;
const MAX_PAGE = 64 << 10;
/** Stack bytes kept from each thread's stack pointer up, for its trace. */
export const MAX_STACK_BYTES = 256 << 10;
/** Threads whose stacks are kept, crashing thread first. */
export const MAX_STACK_THREADS = 64;
/** Stack bytes kept in all. */
const MAX_STACKS_TOTAL = 16 << 20;
/** Largest vDSO kept. */
const MAX_VDSO = 1 << 20;
/** Bytes of executable memory no file backs (signal trampolines, JIT) kept. */
const MAX_ANONYMOUS_CODE = 1 << 20;

/** Bytes of the crashed process's memory, kept from the core. */
export interface MemoryRegion {
  /** The address of the first byte. */
  address: bigint;
  /** The bytes. */
  bytes: Uint8Array;
  /**
   * What they are: a thread's stack from its stack pointer up, the vDSO,
   * or executable memory no file backs (qemu's signal trampoline page).
   */
  kind: "stack" | "vdso" | "code";
}

/** A file mapped in the crashed process, with its build-id when found. */
export interface CoreModule {
  /** The file's path, as `NT_FILE` names it; `[vdso]` for the vDSO. */
  path: string;
  /** First address of the file's mappings. */
  start: bigint;
  /** End of the last of its mappings. */
  end: bigint;
  /** GNU build-id, lower-case hex, when its ELF headers were in the core. */
  buildId?: string;
}

/** What the inspector learnt from a core. */
export interface CoreReport {
  /** Bytes that passed through. */
  size: number;
  /** The ELF header, when the input is ELF. */
  header?: ElfHeader;
  /** The program headers; empty until (or unless) the table was read. */
  programs: ElfProgram[];
  /** Decoded notes, when the notes were read. */
  notes?: CoreNotes;
  /** Mapped files, executable first when known. */
  modules: CoreModule[];
  /**
   * The memory kept for stack traces: each thread's stack from its stack
   * pointer up (at most {@linkcode MAX_STACK_BYTES} a thread and
   * {@linkcode MAX_STACK_THREADS} threads), and the vDSO.
   */
  memory: MemoryRegion[];
  /** Build-id of the executable (the module holding `AT_ENTRY`). */
  buildId?: string;
  /** Bytes the headers declare; undefined when not ELF. */
  expectedSize?: number;
  /** True when fewer bytes arrived than the headers declare. */
  truncated: boolean;
  /** Why the structure could not be read, when it could not. */
  error?: string;
}

/** A byte range the inspector waits for. */
interface Wanted {
  start: number;
  end: number;
  data: Uint8Array;
  filled: number;
  done: (bytes: Uint8Array) => void;
}

/**
 * A pass-through transform that reads the core's ELF structure as it goes
 * by. Read {@linkcode CoreInspectorStream.report} once the stream has
 * finished.
 *
 * @example Usage
 * ```ts
 * import { CoreInspectorStream } from "./core_inspector.ts";
 * import { EM_X86_64, ET_CORE, PT_LOAD, PT_NOTE } from "./elf.ts";
 * import { NT_PRPSINFO } from "./notes.ts";
 * import assert from "node:assert/strict";
 *
 * // The start of an ELF64 core: the header, two program headers and the
 * // notes. The memory it declares (a PT_LOAD segment at 4096) never comes.
 * const core = new Uint8Array(332);
 * const view = new DataView(core.buffer);
 * core.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
 * view.setUint16(16, ET_CORE, true); // e_type
 * view.setUint16(18, EM_X86_64, true); // e_machine
 * view.setUint32(20, 1, true); // e_version
 * view.setBigUint64(32, 64n, true); // e_phoff
 * view.setUint16(54, 56, true); // e_phentsize
 * view.setUint16(56, 2, true); // e_phnum
 * const program = (i: number, type: number, offset: number, size: number) => {
 *   const at = 64 + 56 * i;
 *   view.setUint32(at, type, true); // p_type
 *   view.setBigUint64(at + 8, BigInt(offset), true); // p_offset
 *   view.setBigUint64(at + 32, BigInt(size), true); // p_filesz
 * };
 * program(0, PT_NOTE, 176, 156);
 * program(1, PT_LOAD, 4096, 4096);
 * view.setUint32(176, 5, true); // namesz: "CORE" and its NUL
 * view.setUint32(180, 136, true); // descsz: struct elf_prpsinfo
 * view.setUint32(184, NT_PRPSINFO, true);
 * core.set(new TextEncoder().encode("CORE"), 188);
 * core.set(new TextEncoder().encode("crasher"), 196 + 40); // pr_fname
 *
 * const inspector = new CoreInspectorStream();
 * const passed = await new Response(
 *   ReadableStream.from([core.subarray(0, 100), core.subarray(100)])
 *     .pipeThrough(inspector),
 * ).bytes();
 * assert.deepEqual(passed, core);
 * const { report } = inspector;
 * assert.equal(report.header?.type, ET_CORE);
 * assert.equal(report.notes?.process?.comm, "crasher");
 * assert.equal(report.expectedSize, 8192);
 * assert.equal(report.truncated, true);
 * ```
 */
export class CoreInspectorStream
  extends TransformStream<Uint8Array, Uint8Array> {
  #position = 0;
  /** Offset of the chunk being read: bytes before it are gone. */
  #from = 0;
  #wanted: Wanted[] = [];
  #report: CoreReport = {
    size: 0,
    programs: [],
    modules: [],
    memory: [],
    truncated: false,
  };
  #noteBytes = 0;
  #notes: ElfNote[] = [];
  #notesPending = 0;
  #pages = new Map<bigint, Uint8Array>();
  #finished = false;
  /** Module pages that had gone by before the notes named them. */
  #missed: Wanted[] = [];

  /** Creates the inspector. */
  constructor() {
    super({
      transform: (chunk, controller) => {
        controller.enqueue(chunk);
        this.#take(chunk);
      },
      flush: () => this.#finish(),
    });
    this.#want(0, 64, (bytes) => this.#onHeader(bytes));
  }

  /**
   * Reads a chunk as if it had passed through the stream: for callers that
   * read the core themselves (and decide what to do with each chunk).
   *
   * @param chunk The next bytes of the core.
   */
  inspect(chunk: Uint8Array): void {
    this.#take(chunk);
  }

  /**
   * The core's size as its headers declare it, known as soon as the
   * program header table has passed (the compressor sizes its index by it);
   * undefined before that, or when the input is not an ELF core.
   */
  get declaredSize(): number | undefined {
    const { header, programs } = this.#report;
    if (header === undefined || programs.length === 0) return undefined;
    return expectedFileSize({ header, programs, sections: [] });
  }

  /** The report; complete once the stream has been flushed. */
  get report(): CoreReport {
    if (!this.#finished) this.#finish();
    return this.#report;
  }

  #want(
    start: number,
    length: number,
    done: (bytes: Uint8Array) => void,
    optional = false,
  ): void {
    if (start < this.#from) {
      if (optional) {
        this.#missed.push({
          start,
          end: start + length,
          data: new Uint8Array(0),
          filled: 0,
          done,
        });
        return;
      }
      this.#fail(
        new ElfFormatError(
          `Cannot read bytes at offset 0x${
            start.toString(16)
          } in flight: the stream is already at 0x${
            this.#position.toString(16)
          }, expected structures in file order`,
          start,
        ),
      );
      return;
    }
    this.#wanted.push({
      start,
      end: start + length,
      data: new Uint8Array(length),
      filled: 0,
      done,
    });
  }

  #take(chunk: Uint8Array): void {
    const from = this.#position;
    this.#from = from;
    this.#position += chunk.length;
    this.#report.size = this.#position;
    let progress = true;
    while (progress && this.#wanted.length > 0) {
      progress = false;
      for (const wanted of [...this.#wanted]) {
        const next = wanted.start + wanted.filled;
        if (next < from || next >= this.#position) continue;
        const take = Math.min(wanted.end, this.#position) - next;
        wanted.data.set(
          chunk.subarray(next - from, next - from + take),
          wanted.filled,
        );
        wanted.filled += take;
        if (wanted.filled === wanted.data.length) {
          this.#wanted.splice(this.#wanted.indexOf(wanted), 1);
          this.#guard(() => wanted.done(wanted.data));
          progress = true;
        }
      }
    }
  }

  #guard(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    this.#report.error ??= errorText(error);
    this.#wanted = [];
  }

  #onHeader(bytes: Uint8Array): void {
    const header = parseElfHeader(bytes);
    this.#report.header = header;
    if (header.phnum === PN_XNUM) {
      throw new ElfFormatError(
        "Cannot read the program headers in flight: the core uses extended numbering (e_phnum PN_XNUM), whose count is in the section table at the end",
        0,
      );
    }
    const length = header.phnum * header.phentsize;
    if (length > MAX_PROGRAM_TABLE) {
      throw new ElfFormatError(
        `Cannot read the program header table: ${length} bytes, expected at most ${MAX_PROGRAM_TABLE}`,
        header.phoff,
      );
    }
    if (length > 0) {
      this.#want(header.phoff, length, (table) => this.#onPrograms(table));
    }
  }

  #onPrograms(table: Uint8Array): void {
    const header = this.#report.header!;
    const programs = parsePrograms(table, header);
    this.#report.programs = programs;
    const notes = programs.filter((p) => p.type === PT_NOTE && p.filesz > 0)
      .sort((a, b) => a.offset - b.offset);
    for (const program of notes) {
      if (this.#noteBytes + program.filesz > MAX_NOTE_BYTES) {
        throw new ElfFormatError(
          `Cannot keep the notes: more than ${MAX_NOTE_BYTES} bytes of PT_NOTE data`,
          program.offset,
        );
      }
      this.#noteBytes += program.filesz;
      this.#notesPending++;
      this.#want(program.offset, program.filesz, (area) => {
        this.#notes.push(
          ...parseNotes(area, {
            littleEndian: header.littleEndian,
            baseOffset: program.offset,
            align: program.align === 8n ? 8 : 4,
          }),
        );
        if (--this.#notesPending === 0) this.#onNotes();
      });
    }
  }

  #onNotes(): void {
    const header = this.#report.header!;
    const notes = decodeCoreNotes(this.#notes, header);
    this.#report.notes = notes;
    this.#notes = [];
    // NT_FILE's page size is 1 in gdb's cores: take the auxiliary vector's.
    const pageSize = Math.max(
      4096,
      Math.min(Number(notes.auxv.get(AT_PAGESZ) ?? 4096n), MAX_PAGE),
    );
    // One module per file mapped from offset 0, spanning its mappings.
    const modules: CoreModule[] = [];
    for (const file of notes.files) {
      const module = modules.find((m) => m.path === file.path);
      if (module === undefined && file.fileOffset === 0n) {
        modules.push({ path: file.path, start: file.start, end: file.end });
      } else if (module !== undefined && file.end > module.end) {
        module.end = file.end;
      }
    }
    // The vDSO is no file, but the kernel dumps it whole: list it too.
    const vdso = notes.auxv.get(AT_SYSINFO_EHDR);
    const vdsoLoad = this.#report.programs.find((p) =>
      p.type === PT_LOAD && p.vaddr === vdso
    );
    if (vdso !== undefined && vdsoLoad !== undefined) {
      modules.push({ path: "[vdso]", start: vdso, end: vdso + vdsoLoad.memsz });
    }
    this.#report.modules = modules;
    this.#wantMemory(notes, vdsoLoad);
    for (const module of modules.slice(0, MAX_MODULES)) {
      const load = this.#report.programs.find((p) =>
        p.type === PT_LOAD && p.vaddr <= module.start &&
        module.start < p.vaddr + BigInt(p.filesz)
      );
      if (load === undefined) continue;
      const offset = load.offset + Number(module.start - load.vaddr);
      const length = Math.min(pageSize, load.offset + load.filesz - offset);
      this.#want(offset, length, (page) => {
        this.#pages.set(module.start, page);
      }, true);
    }
  }

  /** Asks for each thread's stack from its stack pointer up, and the vDSO. */
  #wantMemory(notes: CoreNotes, vdso: ElfProgram | undefined): void {
    const { header, programs } = this.#report;
    const holding = (address: bigint) =>
      programs.find((p) =>
        p.type === PT_LOAD && p.vaddr <= address &&
        address < p.vaddr + BigInt(p.filesz)
      );
    const keep = (
      load: ElfProgram,
      address: bigint,
      length: number,
      kind: MemoryRegion["kind"],
    ) =>
      this.#want(
        load.offset + Number(address - load.vaddr),
        length,
        (bytes) => this.#report.memory.push({ address, bytes, kind }),
        true,
      );
    if (vdso !== undefined && vdso.filesz <= MAX_VDSO) {
      keep(vdso, vdso.vaddr, vdso.filesz, "vdso");
    }
    // Small executable segments no mapped file covers, smallest first.
    const anonymous = programs.filter((p) =>
      p.type === PT_LOAD && (p.flags & 1) !== 0 && p.filesz > 0 &&
      p !== vdso && !notes.files.some((f) =>
        f.start <= p.vaddr && p.vaddr < f.end
      )
    ).sort((a, b) => a.filesz - b.filesz);
    let code = MAX_ANONYMOUS_CODE;
    for (const segment of anonymous) {
      if (segment.filesz > code) break;
      code -= segment.filesz;
      keep(segment, segment.vaddr, segment.filesz, "code");
    }
    let budget = MAX_STACKS_TOTAL;
    for (const thread of notes.threads.slice(0, MAX_STACK_THREADS)) {
      const registers = threadRegisters(header!.machine, thread.registers);
      if (registers === undefined) continue;
      const load = holding(registers.sp);
      if (load === undefined) continue;
      const available = load.vaddr + BigInt(load.filesz) - registers.sp;
      const length = Math.min(MAX_STACK_BYTES, Number(available), budget);
      if (length <= 0) continue;
      budget -= length;
      keep(load, registers.sp, length, "stack");
    }
  }

  /**
   * Reads, from the file the stream came from, the module pages that had
   * gone by before the notes named them (gdb's `gcore` writes its notes
   * last). Call after the stream has finished.
   *
   * @param file The core file, open for reading.
   */
  async completeFrom(file: Deno.FsFile): Promise<void> {
    if (this.#missed.length === 0) return;
    for (const wanted of this.#missed.splice(0)) {
      try {
        wanted.done(
          await readElfAt(file, wanted.start, wanted.end - wanted.start),
        );
      } catch {
        // A page that cannot be read leaves its module without a build-id.
      }
    }
    this.#finished = false;
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const report = this.#report;
    if (report.header === undefined) {
      report.error ??= report.size === 0
        ? "Cannot parse ELF: the core is empty"
        : `Cannot parse ELF: the core has ${report.size} bytes, expected at least an ELF header`;
      return;
    }
    report.expectedSize = expectedFileSize({
      header: report.header,
      programs: report.programs,
      sections: [],
    });
    report.truncated = report.size < report.expectedSize;
    for (const module of report.modules) {
      const page = this.#pages.get(module.start);
      if (page === undefined) continue;
      try {
        const id = moduleBuildId(page);
        if (id !== undefined) module.buildId = id;
      } catch {
        // A module whose headers are not readable has no build-id to give.
      }
    }
    const entry = report.notes?.auxv.get(AT_ENTRY);
    if (entry !== undefined) {
      const main = report.modules.find((m) =>
        m.start <= entry && entry < m.end
      );
      if (main !== undefined) {
        report.modules = [main, ...report.modules.filter((m) => m !== main)];
        if (main.buildId !== undefined) report.buildId = main.buildId;
      }
    }
    if (
      report.error === undefined && report.truncated && this.#wanted.length > 0
    ) {
      report.error =
        `Cannot read all of the core's structure: it ends at byte ${report.size}`;
    }
    this.#wanted = [];
  }
}

/**
 * The GNU build-id of a module from the first page of its mapping: its ELF
 * header, its program headers and a `PT_NOTE` segment must all lie within
 * the page (they do for every module a linker lays out).
 */
function moduleBuildId(page: Uint8Array): string | undefined {
  const header = parseElfHeader(page);
  const end = header.phoff + header.phnum * header.phentsize;
  if (header.phnum === 0 || end > page.length) return undefined;
  const programs = parsePrograms(page.subarray(header.phoff, end), header);
  for (const program of programs) {
    if (
      program.type !== PT_NOTE || program.offset + program.filesz > page.length
    ) continue;
    let id: string | undefined;
    try {
      id = buildIdOf(
        parseNotes(
          page.subarray(program.offset, program.offset + program.filesz),
          {
            littleEndian: header.littleEndian,
            align: program.align === 8n ? 8 : 4,
          },
        ),
      );
    } catch {
      continue; // A malformed note area; another may hold the build-id.
    }
    if (id !== undefined) return id;
  }
  return undefined;
}
