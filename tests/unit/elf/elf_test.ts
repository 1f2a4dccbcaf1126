/**
 * ELF files built here byte by byte, from the layouts of the ELF
 * specification, parsed back; and hostile variants of them, which must be
 * refused with an ElfFormatError, never another error.
 */
import assert from "node:assert/strict";
import {
  buildIdOf,
  ELFCLASS32,
  ELFCLASS64,
  ElfFormatError,
  EM_AARCH64,
  EM_X86_64,
  ET_DYN,
  ET_EXEC,
  expectedFileSize,
  findSection,
  NT_GNU_BUILD_ID,
  parseElf,
  parseElfHeader,
  parseNotes,
  PT_LOAD,
  PT_NOTE,
  sectionData,
  SHT_NOTE,
  SHT_PROGBITS,
  SHT_STRTAB,
  TruncatedElfError,
} from "../../../lib/elf/mod.ts";
import { seeded } from "../_temp.ts";

const UUID = Uint8Array.from({ length: 16 }, (_, i) => (i * 0x1f + 7) & 0xff);
const BUILD_ID = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);

interface Built {
  bytes: Uint8Array;
  is64: boolean;
  little: boolean;
  machine: number;
  type: number;
  entry: bigint;
  offsets: { note: number; uuid: number; strtab: number; shoff: number };
}

/**
 * A small executable: a PT_LOAD over the whole file and a PT_NOTE with a
 * GNU build-id; sections: null, .note.gnu.build-id, .uuid, .shstrtab.
 */
function buildElf(is64: boolean, little: boolean): Built {
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const shentsize = is64 ? 64 : 40;
  const names = "\0.note.gnu.build-id\0.uuid\0.shstrtab\0";
  const phoff = ehsize;
  const note = phoff + 2 * phentsize; // 4-aligned in both classes
  const noteSize = 12 + 4 + BUILD_ID.length;
  const uuid = note + noteSize;
  const strtab = uuid + UUID.length;
  const shoff = Math.ceil((strtab + names.length) / 8) * 8;
  const size = shoff + 4 * shentsize;
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  const u16 = (at: number, n: number) => v.setUint16(at, n, little);
  const u32 = (at: number, n: number) => v.setUint32(at, n, little);
  const word = (at: number, n: number | bigint) =>
    is64 ? v.setBigUint64(at, BigInt(n), little) : u32(at, Number(n));
  const machine = is64 ? EM_X86_64 : EM_AARCH64;
  const type = is64 ? ET_DYN : ET_EXEC;
  const entry = is64 ? 0x401234n : 0x8048000n;
  // e_ident
  bytes.set([
    0x7f,
    0x45,
    0x4c,
    0x46,
    is64 ? ELFCLASS64 : ELFCLASS32,
    little ? 1 : 2,
    1,
  ]);
  u16(16, type);
  u16(18, machine);
  u32(20, 1);
  const w = is64 ? 8 : 4;
  word(24, entry);
  word(24 + w, phoff);
  word(24 + 2 * w, shoff);
  const o = 24 + 3 * w;
  u32(o, 0);
  u16(o + 4, ehsize);
  u16(o + 6, phentsize);
  u16(o + 8, 2);
  u16(o + 10, shentsize);
  u16(o + 12, 4);
  u16(o + 14, 3);
  // Program headers: the field order differs between the classes.
  const program = (
    at: number,
    p: {
      type: number;
      flags: number;
      offset: number;
      vaddr: number;
      filesz: number;
      memsz: number;
      align: number;
    },
  ) => {
    u32(at, p.type);
    if (is64) {
      u32(at + 4, p.flags);
      word(at + 8, p.offset);
      word(at + 16, p.vaddr);
      word(at + 24, p.vaddr);
      word(at + 32, p.filesz);
      word(at + 40, p.memsz);
      word(at + 48, p.align);
    } else {
      u32(at + 4, p.offset);
      u32(at + 8, p.vaddr);
      u32(at + 12, p.vaddr);
      u32(at + 16, p.filesz);
      u32(at + 20, p.memsz);
      u32(at + 24, p.flags);
      u32(at + 28, p.align);
    }
  };
  program(phoff, {
    type: PT_LOAD,
    flags: 5,
    offset: 0,
    vaddr: 0x400000,
    filesz: size,
    memsz: size + 0x1000,
    align: 0x1000,
  });
  program(phoff + phentsize, {
    type: PT_NOTE,
    flags: 4,
    offset: note,
    vaddr: 0x400000 + note,
    filesz: noteSize,
    memsz: noteSize,
    align: 4,
  });
  // The note: namesz, descsz, type, "GNU\0", the build-id.
  u32(note, 4);
  u32(note + 4, BUILD_ID.length);
  u32(note + 8, NT_GNU_BUILD_ID);
  bytes.set(new TextEncoder().encode("GNU\0"), note + 12);
  bytes.set(BUILD_ID, note + 16);
  bytes.set(UUID, uuid);
  bytes.set(new TextEncoder().encode(names), strtab);
  const section = (
    at: number,
    s: { name: number; type: number; offset: number; size: number },
  ) => {
    u32(at, s.name);
    u32(at + 4, s.type);
    if (is64) {
      word(at + 24, s.offset);
      word(at + 32, s.size);
      word(at + 48, 1);
    } else {
      u32(at + 16, s.offset);
      u32(at + 20, s.size);
      u32(at + 32, 1);
    }
  };
  section(shoff + shentsize, {
    name: names.indexOf(".note"),
    type: SHT_NOTE,
    offset: note,
    size: noteSize,
  });
  section(shoff + 2 * shentsize, {
    name: names.indexOf(".uuid"),
    type: SHT_PROGBITS,
    offset: uuid,
    size: UUID.length,
  });
  section(shoff + 3 * shentsize, {
    name: names.indexOf(".shstrtab"),
    type: SHT_STRTAB,
    offset: strtab,
    size: names.length,
  });
  return {
    bytes,
    is64,
    little,
    machine,
    type,
    entry,
    offsets: { note, uuid, strtab, shoff },
  };
}

const VARIANTS = [
  buildElf(true, true),
  buildElf(false, false),
  buildElf(true, false),
  buildElf(false, true),
];

Deno.test("parseElf() reads back the header, segments and sections of files built by hand", () => {
  for (const built of VARIANTS) {
    const what = `ELF${built.is64 ? 64 : 32} ${built.little ? "LE" : "BE"}`;
    const elf = parseElf(built.bytes);
    const { header } = elf;
    assert.equal(header.class, built.is64 ? 64 : 32, what);
    assert.equal(header.littleEndian, built.little, what);
    assert.equal(header.type, built.type, what);
    assert.equal(header.machine, built.machine, what);
    assert.equal(header.entry, built.entry, what);
    assert.equal(header.phnum, 2);
    assert.equal(header.shnum, 4);
    assert.equal(header.shoff, built.offsets.shoff);
    assert.deepEqual(elf.programs.map((p) => [p.type, p.flags]), [
      [PT_LOAD, 5],
      [PT_NOTE, 4],
    ], what);
    assert.equal(elf.programs[0]!.filesz, built.bytes.length);
    assert.equal(elf.programs[0]!.memsz, BigInt(built.bytes.length + 0x1000));
    assert.equal(elf.programs[1]!.vaddr, BigInt(0x400000 + built.offsets.note));
    assert.deepEqual(elf.sections.map((s) => s.name), [
      "",
      ".note.gnu.build-id",
      ".uuid",
      ".shstrtab",
    ], what);
    const uuid = findSection(elf, ".uuid");
    assert.ok(uuid !== undefined);
    assert.deepEqual(sectionData(built.bytes, uuid), UUID);
    assert.equal(findSection(elf, ".text"), undefined);
    assert.equal(expectedFileSize(elf), built.bytes.length, what);
    // The note segment: the build-id, in the file's byte order.
    const segment = elf.programs[1]!;
    const notes = parseNotes(
      built.bytes.subarray(segment.offset, segment.offset + segment.filesz),
      { littleEndian: built.little, baseOffset: segment.offset },
    );
    assert.equal(notes.length, 1);
    assert.equal(notes[0]!.offset, built.offsets.note);
    assert.equal(buildIdOf(notes), "deadbeef01020304", what);
    // The header alone, with the file's size, says the same.
    const alone = parseElfHeader(
      built.bytes.subarray(0, built.is64 ? 64 : 52),
      {
        fileSize: built.bytes.length,
      },
    );
    assert.deepEqual(alone, header);
  }
});

Deno.test("parseElf() of every prefix of a file is refused with an ElfFormatError", () => {
  for (const built of VARIANTS) {
    for (let length = 0; length < built.bytes.length; length++) {
      assert.throws(
        () => parseElf(built.bytes.subarray(0, length)),
        (error: unknown) => {
          assert.ok(
            error instanceof ElfFormatError,
            `prefix ${length}: ${error}`,
          );
          assert.ok(!error.message.includes("\n"));
          return true;
        },
      );
    }
  }
  // What is not ELF says what it found.
  assert.throws(
    () => parseElf(new TextEncoder().encode("#!/bin/sh\necho hi\n")),
    /found magic 23 21 2f 62 at offset 0x0, expected 7f 45 4c 46/,
  );
  assert.throws(
    () => parseElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])),
    TruncatedElfError,
  );
});

Deno.test("parseElf() refuses hostile variants with an ElfFormatError and never another error", () => {
  const random = seeded(2026);
  const interesting = [0, 1, 0x7f, 0x80, 0xff];
  let refused = 0;
  for (const built of VARIANTS) {
    // Where the tables are: the header, the program and section headers.
    const regions = [
      [0, built.is64 ? 64 : 52],
      [built.is64 ? 64 : 52, built.offsets.note],
      [built.offsets.shoff, built.bytes.length],
    ];
    for (let i = 0; i < 1500; i++) {
      const bytes = built.bytes.slice();
      const changes = 1 + Math.floor(random() * 4);
      for (let c = 0; c < changes; c++) {
        const [from, to] = regions[Math.floor(random() * regions.length)]!;
        const at = from! + Math.floor(random() * (to! - from!));
        bytes[at] = random() < 0.5
          ? interesting[Math.floor(random() * interesting.length)]!
          : Math.floor(random() * 256);
      }
      try {
        const elf = parseElf(bytes);
        // What parses keeps its promises: everything lies within the file.
        for (const section of elf.sections) {
          if (section.type !== 8) {
            assert.ok(
              section.offset + section.size <= bytes.length,
              "section within the file",
            );
          }
        }
      } catch (error) {
        if (!(error instanceof ElfFormatError)) {
          throw new Error(`variant ${i}: ${error}`, { cause: error });
        }
        refused++;
      }
    }
  }
  assert.ok(refused > 100, `some variants are refused (${refused})`);
});

Deno.test("parseNotes() of random note areas returns notes within the area or an ElfFormatError", () => {
  const random = seeded(77);
  for (let i = 0; i < 3000; i++) {
    const area = new Uint8Array(Math.floor(random() * 64));
    const view = new DataView(area.buffer);
    for (let at = 0; at < area.length; at++) {
      area[at] = Math.floor(random() * 256);
    }
    // Plausible small sizes now and then, so that some notes parse.
    if (area.length >= 12 && random() < 0.5) {
      view.setUint32(0, Math.floor(random() * 8), true);
      view.setUint32(4, Math.floor(random() * 16), true);
    }
    try {
      const align = random() < 0.5 ? 4 : 8;
      for (const note of parseNotes(area, { littleEndian: true, align })) {
        assert.ok(note.offset >= 0 && note.offset + 12 <= area.length);
        assert.ok(note.desc.byteOffset + note.desc.length <= area.length);
      }
    } catch (error) {
      if (!(error instanceof ElfFormatError)) {
        throw new Error(`area ${i}: ${error}`, { cause: error });
      }
    }
  }
});
