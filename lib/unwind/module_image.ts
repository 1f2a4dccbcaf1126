/**
 * What the unwinder needs of one mapped module: its call frame information,
 * its function symbols and its load bias, read from the module's file (or,
 * for the vDSO, from the core's memory) with bounded reads.
 *
 * @module
 */

import {
  ByteReader,
  type ElfFile,
  type ElfSection,
  findSection,
  parseElf,
  PT_LOAD,
  readBuildId,
  readElf,
  readElfAt,
  SHT_NOBITS,
  SHT_SYMTAB,
} from "../elf/mod.ts";
import { errorText } from "../util/mod.ts";
import { CallFrameInfo, type CfiSection, type CfiSections } from "./cfi.ts";
import { Cursor } from "./_cursor.ts";
import { ArmExidx } from "./arm_exidx.ts";
import { type SymbolSection, SymbolTable } from "./symbols.ts";

/** `SHT_DYNSYM`. */
const SHT_DYNSYM = 11;
/** `SHF_COMPRESSED`: the section's contents are compressed. */
const SHF_COMPRESSED = 0x800n;
/** `PT_GNU_EH_FRAME`: the segment of `.eh_frame_hdr`. */
const PT_GNU_EH_FRAME = 0x6474e550;
/** Largest section read. */
const MAX_SECTION = 16 << 20;
/** `PF_X`: an executable segment. */
const PF_X = 1;
/** Bytes of code read at once, and cached, by {@linkcode ModuleImage.code}. */
const CODE_PAGE = 4096;

/** A module, loaded for unwinding and naming. */
export interface ModuleImage {
  /** The module's path, or `[vdso]`. */
  path: string;
  /** Where its mapping of file offset 0 starts in the process. */
  start: bigint;
  /** Added to the module's own addresses to give the process's. */
  bias: bigint;
  /** Its GNU build-id, when it has one. */
  buildId?: string;
  /** Its call frame information, when it has any. */
  cfi?: CallFrameInfo;
  /** Its function symbols, when it has any. */
  symbols?: SymbolTable;
  /** ARM: its EHABI unwind tables (`.ARM.exidx`), when it has them. */
  exidx?: ArmExidx;
  /**
   * Reads `size` bytes of its code at a process address: from an
   * executable segment of its file, a page at a time, within the trace's
   * budget. Undefined where the bytes are not in such a segment, cannot be
   * read, or the budget is spent; throws nothing.
   */
  code?: (address: bigint, size: number) => Promise<Uint8Array | undefined>;
  /** What could not be read, when something could not. */
  error?: string;
}

/** Options for the loaders. */
export interface LoadModuleOptions {
  /** The module's path, for messages and the image. */
  path: string;
  /** Where its mapping of file offset 0 starts in the process. */
  start: bigint;
  /**
   * Bytes the loader may still read, shared by the modules of one trace:
   * each section read takes from it, and a section it cannot pay for is
   * left out (said in the image's `error`).
   *
   * @default {{ bytes: Infinity }}
   */
  budget?: { bytes: number };
  /**
   * When `performance.now()` passes this, indexing call frame information
   * stops (the `deadline` of `CallFrameInfo`'s options).
   *
   * @default {Infinity}
   */
  deadline?: number;
}

/** Reads `length` bytes at `offset` of the module's file. */
type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/**
 * Loads a module from its file: headers, then only the sections the
 * unwinder needs, each at most 16 MiB, within the trace's budget.
 *
 * @example Usage
 * ```ts
 * import { loadModuleFile } from "./module_image.ts";
 * import assert from "node:assert/strict";
 *
 * // The shell, as if mapped at 0x555555554000.
 * using file = await Deno.open("/bin/sh");
 * const image = await loadModuleFile(file, { path: "/bin/sh", start: 0x555555554000n });
 * assert.ok(image.cfi !== undefined, image.error);
 * assert.match(image.buildId ?? "", /^[0-9a-f]*$/);
 * ```
 *
 * @param file The module's file, open for reading.
 * @param options Its path and where it is mapped.
 * @returns The image; what could not be read is in its `error`.
 */
export async function loadModuleFile(
  file: Deno.FsFile,
  options: LoadModuleOptions,
): Promise<ModuleImage> {
  let elf: ElfFile;
  try {
    elf = await readElf(file);
  } catch (error) {
    return unreadable(options, error);
  }
  const image = await load(
    elf,
    (offset, length) => readElfAt(file, offset, length),
    options,
  );
  try {
    const id = await readBuildId(file, elf);
    if (id !== undefined) image.buildId = id;
  } catch {
    // No build-id to give.
  }
  return image;
}

/**
 * Loads a module from its bytes as mapped (the vDSO, which the kernel dumps
 * whole).
 *
 * @param bytes The module's bytes, from its first.
 * @param options Its name and where it is mapped.
 * @returns The image; what could not be read is in its `error`.
 */
export async function loadModuleBytes(
  bytes: Uint8Array,
  options: LoadModuleOptions,
): Promise<ModuleImage> {
  let elf: ElfFile;
  try {
    elf = parseElf(bytes);
  } catch (error) {
    return unreadable(options, error);
  }
  return await load(elf, (offset, length) => {
    if (offset < 0 || offset + length > bytes.length) {
      return Promise.reject(
        new RangeError(
          `Cannot read ${length} bytes at ${offset}: the module has ${bytes.length}`,
        ),
      );
    }
    return Promise.resolve(bytes.subarray(offset, offset + length));
  }, options);
}

/** The image of a module whose ELF headers cannot be read. */
function unreadable(options: LoadModuleOptions, error: unknown): ModuleImage {
  return {
    path: options.path,
    start: options.start,
    bias: 0n,
    error: errorText(error),
  };
}

async function load(
  elf: ElfFile,
  read: ReadAt,
  options: LoadModuleOptions,
): Promise<ModuleImage> {
  const { header } = elf;
  const is64 = header.class === 64;
  const loads = elf.programs.filter((p) => p.type === PT_LOAD);
  const first = loads.reduce<typeof loads[number] | undefined>(
    (low, p) => low === undefined || p.offset < low.offset ? p : low,
    undefined,
  );
  const base = first === undefined
    ? 0n
    : (first.vaddr - BigInt(first.offset)) & ~0xfffn;
  const image: ModuleImage = {
    path: options.path,
    start: options.start,
    bias: options.start - base,
  };
  const problems: string[] = [];
  const section = async (
    found: ElfSection | undefined,
  ): Promise<CfiSection | undefined> => {
    if (found === undefined || found.type === SHT_NOBITS || found.size === 0) {
      return undefined;
    }
    if ((found.flags & SHF_COMPRESSED) !== 0n) {
      problems.push(`${found.name} is compressed`);
      return undefined;
    }
    const budget = options.budget ?? { bytes: Infinity };
    if (found.size > budget.bytes) {
      problems.push(
        `${found.name} has ${found.size} bytes, more than the ${budget.bytes} left of the trace's budget`,
      );
      return undefined;
    }
    if (found.size > MAX_SECTION) {
      problems.push(
        `${found.name} has ${found.size} bytes, more than ${MAX_SECTION}`,
      );
      return undefined;
    }
    budget.bytes -= found.size;
    try {
      return {
        bytes: await read(found.offset, found.size),
        address: found.addr,
      };
    } catch (error) {
      problems.push(errorText(error));
      return undefined;
    }
  };
  const sections: CfiSections = {};
  const ehFrame = await section(findSection(elf, ".eh_frame"));
  const ehFrameHdr = await section(findSection(elf, ".eh_frame_hdr"));
  const debugFrame = await section(findSection(elf, ".debug_frame"));
  if (ehFrame !== undefined) sections.ehFrame = ehFrame;
  if (ehFrameHdr !== undefined) sections.ehFrameHdr = ehFrameHdr;
  if (debugFrame !== undefined) sections.debugFrame = debugFrame;
  const text = findSection(elf, ".text");
  if (text !== undefined) sections.text = text.addr;
  const got = findSection(elf, ".got");
  if (got !== undefined) sections.got = got.addr;
  if (
    findSection(elf, ".eh_frame") === undefined &&
    findSection(elf, ".debug_frame") === undefined
  ) {
    // No section headers (stripped to the segments): PT_GNU_EH_FRAME.
    const budget = options.budget ?? { bytes: Infinity };
    const fromSegments = await ehFrameFromSegments(elf, read, budget).catch(
      (error) => {
        problems.push(errorText(error));
        return undefined;
      },
    );
    if (fromSegments !== undefined) Object.assign(sections, fromSegments);
  }
  if (sections.ehFrame !== undefined || sections.debugFrame !== undefined) {
    image.cfi = new CallFrameInfo(sections, {
      is64,
      littleEndian: header.littleEndian,
      where: options.path,
      ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
    });
  }
  const exidx = await section(findSection(elf, ".ARM.exidx"));
  if (exidx !== undefined) {
    const extab = await section(findSection(elf, ".ARM.extab"));
    image.exidx = new ArmExidx(
      extab === undefined ? { exidx } : { exidx, extab },
      { littleEndian: header.littleEndian },
    );
  }
  const symbolSections: SymbolSection[] = [];
  for (const type of [SHT_SYMTAB, SHT_DYNSYM]) {
    const table = elf.sections.find((s) => s.type === type);
    const strings = table && elf.sections[table.link];
    if (table === undefined || strings === undefined) continue;
    const symbols = await section(table);
    const names = await section(strings);
    if (symbols !== undefined && names !== undefined) {
      symbolSections.push({ symbols: symbols.bytes, strings: names.bytes });
    }
  }
  if (symbolSections.length > 0) {
    try {
      const table = new SymbolTable(symbolSections, {
        is64,
        littleEndian: header.littleEndian,
      });
      if (table.size > 0) image.symbols = table;
    } catch (error) {
      problems.push(errorText(error));
    }
  }
  image.code = codeReader(elf, read, image.bias, options.budget);
  if (problems.length > 0) image.error = problems.join("; ");
  return image;
}

/**
 * Reads code from the executable segments, a page at a time: the pages
 * read are kept, each paid for once from the budget.
 */
function codeReader(
  elf: ElfFile,
  read: ReadAt,
  bias: bigint,
  budget: { bytes: number } = { bytes: Infinity },
): (address: bigint, size: number) => Promise<Uint8Array | undefined> {
  const segments = elf.programs.filter((p) =>
    p.type === PT_LOAD && (p.flags & PF_X) !== 0 && p.filesz > 0
  );
  const pages = new Map<number, Promise<Uint8Array | undefined>>();
  const page = (offset: number, end: number) => {
    let found = pages.get(offset);
    if (found === undefined) {
      const length = Math.min(CODE_PAGE, end - offset);
      if (length > budget.bytes) return Promise.resolve(undefined);
      budget.bytes -= length;
      found = read(offset, length).catch(() => undefined);
      pages.set(offset, found);
    }
    return found;
  };
  return async (address, size) => {
    const at = address - bias;
    const segment = segments.find((p) =>
      p.vaddr <= at && at + BigInt(size) <= p.vaddr + BigInt(p.filesz)
    );
    if (segment === undefined) return undefined;
    const offset = segment.offset + Number(at - segment.vaddr);
    const end = segment.offset + segment.filesz;
    const bytes = new Uint8Array(size);
    for (let done = 0; done < size;) {
      const first = Math.floor((offset + done) / CODE_PAGE) * CODE_PAGE;
      const got = await page(first, end);
      if (got === undefined) return undefined;
      const from = offset + done - first;
      const take = Math.min(size - done, got.length - from);
      if (take <= 0) return undefined;
      bytes.set(got.subarray(from, from + take), done);
      done += take;
    }
    return bytes;
  };
}

/** `.eh_frame_hdr` from `PT_GNU_EH_FRAME`, and `.eh_frame` from its pointer. */
async function ehFrameFromSegments(
  elf: ElfFile,
  read: ReadAt,
  budget: { bytes: number },
): Promise<CfiSections | undefined> {
  const segment = elf.programs.find((p) => p.type === PT_GNU_EH_FRAME);
  if (segment === undefined || segment.filesz === 0) return undefined;
  const { header } = elf;
  const take = (length: number) => {
    const allowed = Math.min(length, MAX_SECTION);
    if (allowed > budget.bytes) {
      throw new RangeError(
        `the call frame information has ${allowed} bytes, more than the ${budget.bytes} left of the trace's budget`,
      );
    }
    budget.bytes -= allowed;
    return allowed;
  };
  const hdr: CfiSection = {
    bytes: await read(segment.offset, take(segment.filesz)),
    address: segment.vaddr,
  };
  const c = new Cursor(
    new ByteReader(hdr.bytes, {
      is64: header.class === 64,
      littleEndian: header.littleEndian,
    }),
    hdr.address,
    ".eh_frame_hdr",
  );
  c.u8("version");
  const encoding = c.u8("eh_frame_ptr_enc");
  c.u8("fde_count_enc");
  c.u8("table_enc");
  const address = c.pointer(encoding, "eh_frame_ptr", { data: hdr.address });
  if (address === undefined) return undefined;
  const load = elf.programs.find((p) =>
    p.type === PT_LOAD && p.vaddr <= address &&
    address < p.vaddr + BigInt(p.filesz)
  );
  if (load === undefined) return undefined;
  const offset = load.offset + Number(address - load.vaddr);
  const length = take(load.offset + load.filesz - offset);
  return {
    ehFrameHdr: hdr,
    ehFrame: { bytes: await read(offset, length), address },
  };
}
