/**
 * What identifies a program: its `.uuid` section (stamped after the build,
 * with objcopy or `gzcoredump stamp`), its GNU build-id, and the package
 * metadata note (`.note.package`) systemd defined.
 *
 * The program may be hostile: it is opened only if it is a regular file, and
 * only its headers, tables and the few sections wanted are read, each with a
 * bound.
 *
 * @module
 */

import { openRegularFile, type OpenRegularFileOptions } from "../fs/mod.ts";
import {
  type ElfFile,
  findSection,
  PT_NOTE,
  readElf,
  readElfAt,
  SHT_NOBITS,
  SHT_NOTE,
} from "./elf.ts";
import {
  buildIdOf,
  type ElfNote,
  packageMetadataOf,
  parseNotes,
} from "./notes.ts";

/** Most bytes of `.uuid` kept, as the original kept it in a text file. */
export const MAX_UUID_BYTES = 4096;
/** Most bytes of one note area read. */
const MAX_NOTE_AREA = 64 << 10;
/** Most note areas read, and most bytes of them all. */
const MAX_NOTE_AREAS = 32;
const MAX_NOTES_TOTAL = 256 << 10;

/** The identity of a program. */
export interface ProgramInfo {
  /** The program's header and tables (contents not read). */
  elf: ElfFile;
  /** The `.uuid` section's bytes, at most {@linkcode MAX_UUID_BYTES}. */
  uuid?: Uint8Array;
  /** True when `.uuid` was longer than what was kept. */
  uuidTruncated: boolean;
  /** GNU build-id, lower-case hex. */
  buildId?: string;
  /** The `.note.package` JSON text. */
  packageMetadata?: string;
}

/** Options for {@linkcode readProgramInfo}. */
export interface ReadProgramInfoOptions extends OpenRegularFileOptions {
  /**
   * Most bytes of `.uuid` to keep.
   *
   * @default {4096}
   */
  maxUuidBytes?: number;
}

/**
 * Reads the GNU build-id of an open ELF file from its note segments and
 * sections.
 *
 * @example Usage
 * ```ts
 * import { readBuildId, readElf } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * using file = await Deno.open(Deno.execPath());
 * const id = await readBuildId(file, await readElf(file));
 * assert.ok(id === undefined || /^[0-9a-f]+$/.test(id));
 * ```
 *
 * @param file The file, open for reading.
 * @param elf Its parsed headers.
 * @returns The build-id in lower-case hex, or undefined.
 */
export async function readBuildId(
  file: Deno.FsFile,
  elf: ElfFile,
): Promise<string | undefined> {
  return buildIdOf(await readNotes(file, elf, { untilBuildId: true }));
}

/**
 * Reads a program's `.uuid`, build-id and package metadata.
 *
 * @param path The program (a regular file; `/proc/<pid>/exe` works).
 * @param options The `.uuid` bound.
 * @returns What was found; absent parts are undefined, not errors.
 * @throws {FileAccessError} When the path is not a readable regular file.
 * @throws {ElfFormatError} When it is not a well-formed ELF file.
 *
 * @example Usage
 * ```ts
 * import { readProgramInfo } from "./program_info.ts";
 * import { ElfFormatError } from "./errors.ts";
 * import { FileAccessError } from "../fs/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // The Deno running this is a program like any other (Linux).
 * const info = await readProgramInfo(Deno.execPath());
 * assert.ok(info.elf.sections.length > 0);
 * // Not stamped: no `.uuid`, which is no error.
 * assert.equal(info.uuid, undefined);
 * assert.equal(info.uuidTruncated, false);
 *
 * const script = await Deno.makeTempFile();
 * await Deno.writeTextFile(script, "#!/bin/sh\n");
 * await assert.rejects(readProgramInfo(script), ElfFormatError);
 * await assert.rejects(readProgramInfo("/"), FileAccessError);
 * await Deno.remove(script);
 * ```
 */
export async function readProgramInfo(
  path: string,
  options: ReadProgramInfoOptions = {},
): Promise<ProgramInfo> {
  const { maxUuidBytes = MAX_UUID_BYTES } = options;
  using file = await openRegularFile(path, {
    noFollow: options.noFollow ?? false,
  });
  const elf = await readElf(file);
  const info: ProgramInfo = { elf, uuidTruncated: false };
  const uuid = findSection(elf, ".uuid");
  if (uuid !== undefined && uuid.type !== SHT_NOBITS) {
    const length = Math.min(uuid.size, maxUuidBytes);
    info.uuid = await readElfAt(file, uuid.offset, length);
    info.uuidTruncated = uuid.size > length;
  }
  const notes = await readNotes(file, elf);
  const buildId = buildIdOf(notes);
  if (buildId !== undefined) info.buildId = buildId;
  const metadata = packageMetadataOf(notes);
  if (metadata !== undefined) info.packageMetadata = metadata;
  return info;
}

/**
 * The notes of a program: its `PT_NOTE` segments (present even when the
 * section headers were stripped), else its `SHT_NOTE` sections.
 */
async function readNotes(
  file: Deno.FsFile,
  elf: ElfFile,
  options: { untilBuildId?: boolean } = {},
): Promise<ElfNote[]> {
  const areas = elf.programs.filter((p) => p.type === PT_NOTE).map((p) => ({
    offset: p.offset,
    size: p.filesz,
    align: p.align === 8n ? 8 as const : 4 as const,
  }));
  // Non-allocated notes (an objcopy-added .note.package) are in no segment.
  for (const section of elf.sections) {
    if (section.type !== SHT_NOTE) continue;
    if (
      areas.some((a) =>
        a.offset <= section.offset && section.offset < a.offset + a.size
      )
    ) continue;
    areas.push({
      offset: section.offset,
      size: section.size,
      align: section.addralign === 8n ? 8 : 4,
    });
  }
  // A hostile file may hold thousands of note sections: a few are read.
  const notes: ElfNote[] = [];
  let total = 0;
  for (const area of areas.slice(0, MAX_NOTE_AREAS)) {
    if (area.size === 0 || area.size > MAX_NOTE_AREA) continue;
    total += area.size;
    if (total > MAX_NOTES_TOTAL) break;
    try {
      const bytes = await readElfAt(file, area.offset, area.size);
      notes.push(...parseNotes(bytes, {
        littleEndian: elf.header.littleEndian,
        baseOffset: area.offset,
        align: area.align,
      }));
    } catch {
      // One malformed note area does not hide the others.
    }
    if (options.untilBuildId && buildIdOf(notes) !== undefined) break;
  }
  return notes;
}
