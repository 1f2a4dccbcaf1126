/**
 * `gzcoredump stamp PROG [--uuid TEXT] [-o OUT] [--force]`: adds a `.uuid`
 * section to a program without objcopy.
 *
 * The file's bytes are kept as they are; the section's data, a new section
 * name table and a new section header table are appended, and the ELF
 * header is pointed at them. No program header changes, so the program
 * loads and runs exactly as before; the old tables stay behind as unused
 * bytes. The `.uuid` section is `SHT_PROGBITS` with no flags: not loaded,
 * so not in the core, which is why capture reads it from the program.
 *
 * @module
 */

import { FileAccessError } from "../../fs/mod.ts";
import { writeFileAtomic } from "../../fs/mod.ts";
import {
  type ElfHeader,
  type ElfSection,
  findSection,
  readElf,
  readElfAt,
  SHT_PROGBITS,
  SHT_STRTAB,
} from "../../elf/mod.ts";
import { ElfFormatError } from "../../elf/mod.ts";
import { openRegularFile } from "../../fs/mod.ts";
import { concat } from "../../util/mod.ts";

/** The program already has a `.uuid` and `--force` was not given. */
export class UuidExistsError extends Error {
  /** Creates the error for the program's path. */
  constructor(path: string) {
    super(
      `Cannot stamp '${path}': it already has a .uuid section, expected none (use --force to replace it)`,
    );
    this.name = "UuidExistsError";
  }
}

/** Options for {@linkcode stampUuid}. */
export interface StampOptions {
  /**
   * The text to stamp, stored followed by a newline (as `uuidgen > f;
   * objcopy --add-section .uuid=f` stores it). A random UUID when undefined.
   *
   * @default {undefined}
   */
  uuid?: string;
  /**
   * Where to write the stamped program. Undefined replaces the program
   * atomically (a running copy is not disturbed).
   *
   * @default {undefined}
   */
  output?: string;
  /**
   * Replace an existing `.uuid`, and an existing output file.
   *
   * @default {false}
   */
  force?: boolean;
}

/** What {@linkcode stampUuid} wrote. */
export interface StampResult {
  /** The stamped program's path. */
  output: string;
  /** The stamped bytes as text. */
  uuid: string;
}

/**
 * Adds (or with `force`, replaces) a program's `.uuid` section.
 *
 * @param path The program.
 * @param options The text, the output, and whether to replace.
 * @returns The output path and the stamped text.
 * @throws {UuidExistsError} When a `.uuid` exists and `force` is not set.
 * @throws {ElfFormatError} When the program is not an ELF file this can
 * extend (extended section numbering).
 *
 * @example Usage
 * ```ts ignore
 * import { stampUuid } from "./stamp_command.ts";
 * const { uuid } = await stampUuid("build/app");
 * ```
 */
export async function stampUuid(
  path: string,
  options: StampOptions = {},
): Promise<StampResult> {
  const { force = false } = options;
  const text = options.uuid ?? crypto.randomUUID();
  const data = new TextEncoder().encode(`${text}\n`);
  using file = await openRegularFile(path);
  const info = await file.stat();
  const elf = await readElf(file);
  const { header } = elf;
  const existing = findSection(elf, ".uuid");
  if (existing !== undefined && !force) throw new UuidExistsError(path);
  if (header.shnum >= 0xff00 - 2) {
    throw new ElfFormatError(
      `Cannot stamp '${path}': it has ${header.shnum} sections, expected fewer than ${
        0xff00 - 2
      } (extended numbering is not supported)`,
      0,
    );
  }

  // The appended tail: .uuid data, section names, section header table.
  const is64 = header.class === 64;
  const entry = header.shentsize || (is64 ? 64 : 40);
  let table: Uint8Array;
  let names: Uint8Array;
  let strndx = header.shstrndx;
  let count = header.shnum;
  if (header.shnum === 0) {
    // No section headers at all: a null section, the names, then .uuid.
    names = new TextEncoder().encode("\0.shstrtab\0");
    table = new Uint8Array(entry * 2);
    strndx = 1;
    count = 2;
  } else {
    table = await readElfAt(file, header.shoff, header.shnum * entry);
    const strtab = elf.sections[header.shstrndx];
    if (
      strtab === undefined || strtab.type !== SHT_STRTAB ||
      header.shstrndx === 0
    ) {
      throw new ElfFormatError(
        `Cannot stamp '${path}': it has no section name table (e_shstrndx ${header.shstrndx}), expected one`,
        0,
      );
    }
    names = await readElfAt(file, strtab.offset, strtab.size);
  }
  const uuidIndex = existing === undefined
    ? count
    : elf.sections.indexOf(existing);
  let nameOffset: number;
  if (existing === undefined) {
    nameOffset = names.length;
    names = concat(names, new TextEncoder().encode(".uuid\0"));
    table = concat(table, new Uint8Array(entry));
    count++;
  } else {
    nameOffset = existingNameOffset(table, header, uuidIndex);
  }

  const uuidOffset = info.size;
  const namesOffset = uuidOffset + data.length;
  const align = is64 ? 8 : 4;
  const tableOffset = Math.ceil((namesOffset + names.length) / align) * align;
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  if (header.shnum === 0) {
    writeSection(view, header, strndx * entry, {
      name: 1,
      type: SHT_STRTAB,
      offset: namesOffset,
      size: names.length,
    });
  } else {
    setOffsetAndSize(view, header, strndx * entry, namesOffset, names.length);
  }
  writeSection(view, header, uuidIndex * entry, {
    name: nameOffset,
    type: SHT_PROGBITS,
    offset: uuidOffset,
    size: data.length,
  });

  const head = await readElfAt(file, 0, is64 ? 64 : 52);
  const headView = new DataView(head.buffer);
  const le = header.littleEndian;
  if (is64) headView.setBigUint64(40, BigInt(tableOffset), le);
  else headView.setUint32(32, tableOffset, le);
  const o = is64 ? 48 : 36; // e_flags
  headView.setUint16(o + 10, entry, le);
  headView.setUint16(o + 12, count, le);
  headView.setUint16(o + 14, strndx, le);

  await file.seek(head.length, Deno.SeekMode.Start);
  const padding = new Uint8Array(tableOffset - namesOffset - names.length);
  const stream = ReadableStream.from((async function* () {
    yield head;
    // The original bytes, read here rather than through file.readable,
    // which would close the file the caller owns.
    for (;;) {
      const chunk = new Uint8Array(1 << 16);
      const n = await file.read(chunk);
      if (n === null) break;
      yield chunk.subarray(0, n);
    }
    yield data;
    yield names;
    yield padding;
    yield table;
  })());
  const output = options.output ?? path;
  if (options.output !== undefined && !force) {
    const taken = await Deno.lstat(output).then(() => true, () => false);
    if (taken) {
      await stream.cancel();
      throw new FileAccessError(
        `Cannot write '${output}': a file of that name exists, expected a new name (use --force to replace it)`,
        output,
      );
    }
  }
  await writeFileAtomic(output, stream, {
    mode: info.mode! & 0o7777,
    replace: options.output === undefined || force,
  });
  return { output, uuid: text };
}

/** The `sh_name` of an existing section header. */
function existingNameOffset(
  table: Uint8Array,
  header: ElfHeader,
  index: number,
): number {
  return new DataView(table.buffer, table.byteOffset).getUint32(
    index * (header.shentsize || 64),
    header.littleEndian,
  );
}

/** Points a section header at new contents. */
function setOffsetAndSize(
  view: DataView,
  header: ElfHeader,
  at: number,
  offset: number,
  size: number,
): void {
  const le = header.littleEndian;
  if (header.class === 64) {
    view.setBigUint64(at + 24, BigInt(offset), le);
    view.setBigUint64(at + 32, BigInt(size), le);
  } else {
    view.setUint32(at + 16, offset, le);
    view.setUint32(at + 20, size, le);
  }
}

/** Writes a non-allocated section header with alignment 1. */
function writeSection(
  view: DataView,
  header: ElfHeader,
  at: number,
  section: Pick<ElfSection, "type" | "offset" | "size"> & { name: number },
): void {
  const le = header.littleEndian;
  const entry = new Uint8Array(
    view.buffer,
    view.byteOffset + at,
    header.shentsize || (header.class === 64 ? 64 : 40),
  );
  entry.fill(0);
  view.setUint32(at, section.name, le);
  view.setUint32(at + 4, section.type, le);
  setOffsetAndSize(view, header, at, section.offset, section.size);
  if (header.class === 64) view.setBigUint64(at + 48, 1n, le);
  else view.setUint32(at + 32, 1, le);
}
