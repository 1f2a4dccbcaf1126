import assert from "node:assert/strict";
import {
  ElfFormatError,
  expectedFileSize,
  findSection,
  machineName,
  parseElf,
  parseElfHeader,
  programTypeName,
  readElf,
  sectionData,
  TruncatedElfError,
  typeName,
} from "../../lib/elf/mod.ts";
import { archFixtures } from "../_fixtures.ts";
import { seededRandom } from "../_helpers.ts";
import { readelfTables } from "../_readelf.ts";

/** readelf's names for the program header types we name. */
const READELF_TYPE: Record<string, string> = {
  PT_NULL: "NULL",
  PT_LOAD: "LOAD",
  PT_DYNAMIC: "DYNAMIC",
  PT_INTERP: "INTERP",
  PT_NOTE: "NOTE",
  PT_PHDR: "PHDR",
  PT_TLS: "TLS",
  PT_GNU_EH_FRAME: "GNU_EH_FRAME",
  PT_GNU_STACK: "GNU_STACK",
  PT_GNU_RELRO: "GNU_RELRO",
  PT_GNU_PROPERTY: "GNU_PROPERTY",
};

Deno.test("parseElf() and readElf() match readelf's tables for every architecture's program and core", async () => {
  for (const fixture of await archFixtures()) {
    for (const path of [fixture.program, fixture.core]) {
      const what = `${fixture.arch} ${path}`;
      const golden = await readelfTables(path);
      const elf = parseElf(await Deno.readFile(path));
      using file = await Deno.open(path);
      assert.deepEqual(
        await readElf(file),
        elf,
        `${what}: readElf and parseElf differ`,
      );
      const { header } = elf;
      assert.equal(header.class, golden.header.class, what);
      assert.equal(header.class === 64, fixture.is64, what);
      assert.equal(header.littleEndian, golden.header.littleEndian, what);
      assert.equal(header.littleEndian, fixture.littleEndian, what);
      assert.equal(header.entry, golden.header.entry, what);
      assert.equal(header.phoff, golden.header.phoff, what);
      assert.equal(header.shoff, golden.header.shoff, what);
      assert.equal(header.phnum, golden.header.phnum, what);
      assert.equal(header.phentsize, golden.header.phentsize, what);
      assert.equal(header.shnum, golden.header.shnum, what);
      assert.equal(header.shentsize, golden.header.shentsize, what);
      assert.equal(header.shstrndx, golden.header.shstrndx, what);
      assert.equal(elf.programs.length, golden.programs.length, what);
      for (const [i, program] of elf.programs.entries()) {
        const expected = golden.programs[i]!;
        assert.equal(program.offset, expected.offset, `${what} program ${i}`);
        assert.equal(program.vaddr, expected.vaddr, `${what} program ${i}`);
        assert.equal(program.filesz, expected.filesz, `${what} program ${i}`);
        assert.equal(program.memsz, expected.memsz, `${what} program ${i}`);
        const name = READELF_TYPE[programTypeName(program.type)];
        if (name !== undefined) {
          assert.equal(name, expected.type, `${what} program ${i}`);
        }
      }
      assert.equal(elf.sections.length, golden.header.shnum, what);
      for (const [i, section] of elf.sections.slice(1).entries()) {
        const expected = golden.sections[i]!;
        assert.equal(section.name, expected.name, `${what} section ${i + 1}`);
        assert.equal(section.addr, expected.addr, `${what} section ${i + 1}`);
        assert.equal(
          section.offset,
          expected.offset,
          `${what} section ${i + 1}`,
        );
        assert.equal(section.size, expected.size, `${what} section ${i + 1}`);
      }
      if (path === fixture.core) {
        assert.equal(typeName(header.type), "ET_CORE");
        // A complete core holds everything its headers declare.
        assert.ok(expectedFileSize(elf) <= (await Deno.stat(path)).size, what);
      }
    }
    const elf = parseElf(await Deno.readFile(fixture.program));
    const expectedMachine: Record<string, string> = {
      x86_64: "EM_X86_64",
      i386: "EM_386",
      aarch64: "EM_AARCH64",
      armhf: "EM_ARM",
      mips: "EM_MIPS",
      powerpc: "EM_PPC",
    };
    assert.equal(
      machineName(elf.header.machine),
      expectedMachine[fixture.arch],
    );
    const comment = findSection(elf, ".comment");
    assert.ok(comment, `${fixture.arch} has a .comment`);
    assert.match(
      new TextDecoder().decode(
        sectionData(await Deno.readFile(fixture.program), comment),
      ),
      /GCC/,
    );
  }
});

Deno.test("findSection() returns undefined for a missing section, and name tables render unknown values as hex", async () => {
  const [fixture] = await archFixtures();
  const elf = parseElf(await Deno.readFile(fixture!.program));
  assert.equal(findSection(elf, ".uuid"), undefined);
  assert.equal(typeName(4), "ET_CORE");
  assert.equal(typeName(0xfe00), "0xfe00");
  assert.equal(machineName(0x9026), "0x9026");
  assert.equal(programTypeName(4), "PT_NOTE");
  assert.equal(programTypeName(0x6474e553), "PT_GNU_PROPERTY");
  assert.equal(programTypeName(0x70000003), "0x70000003");
});

Deno.test("parseElfHeader() says what was expected and what was found, and where", async () => {
  const [x86_64] = await archFixtures();
  const good = (await Deno.readFile(x86_64!.program)).subarray(0, 64);
  const mutate = (edit: (view: DataView) => void) => {
    const copy = good.slice();
    edit(new DataView(copy.buffer));
    return copy;
  };
  const cases: [string, Uint8Array, RegExp, number][] = [
    [
      "text",
      new TextEncoder().encode("#!/bin/sh\necho hello\n"),
      /found magic 23 21 2f 62 at offset 0x0, expected 7f 45 4c 46/,
      0,
    ],
    [
      "class 3",
      mutate((v) => v.setUint8(4, 3)),
      /found class 3 at offset 0x4, expected 1 \(ELF32\) or 2 \(ELF64\)/,
      4,
    ],
    [
      "data 0",
      mutate((v) => v.setUint8(5, 0)),
      /found data encoding 0 at offset 0x5, expected 1 \(little-endian\) or 2 \(big-endian\)/,
      5,
    ],
    [
      "version 2",
      mutate((v) => v.setUint8(6, 2)),
      /found version 2 at offset 0x6, expected 1/,
      6,
    ],
    [
      "e_version 7",
      mutate((v) => v.setUint32(20, 7, true)),
      /found e_version 7 at offset 0x14, expected 1/,
      20,
    ],
    [
      "phentsize 8",
      mutate((v) => v.setUint16(54, 8, true)),
      /found e_phentsize 8 at offset 0x36, expected at least 56/,
      54,
    ],
    [
      "shentsize 8",
      mutate((v) => v.setUint16(58, 8, true)),
      /found e_shentsize 8 at offset 0x3a, expected at least 64/,
      58,
    ],
    [
      "huge phoff",
      mutate((v) => v.setBigUint64(32, 1n << 60n, true)),
      /Cannot use e_phoff 0x1000000000000000 at offset 0x20: it exceeds 2\^53/,
      32,
    ],
  ];
  for (const [what, bytes, message, offset] of cases) {
    assert.throws(
      () => parseElfHeader(bytes, { fileSize: 1 << 20 }),
      (error: unknown) => {
        assert.ok(error instanceof ElfFormatError, `${what}: ${error}`);
        assert.match(error.message, message, what);
        assert.equal(error.offset, offset, what);
        return true;
      },
    );
  }
  // Tables past the end of the file: more bytes are needed, none are wrong.
  const truncations: [number, RegExp][] = [
    [
      100,
      /Cannot read the program header table: offset 0x40 \+ \d+ × 56 bytes exceeds file size 100/,
    ],
    [
      1000,
      /Cannot read the section header table: offset 0x[0-9a-f]+ \+ \d+ × 64 bytes exceeds file size 1000/,
    ],
  ];
  for (const [fileSize, message] of truncations) {
    assert.throws(
      () => parseElfHeader(good, { fileSize }),
      (error: unknown) => {
        assert.ok(error instanceof TruncatedElfError);
        assert.match(error.message, message);
        return true;
      },
    );
  }
});

Deno.test("parseElf() checks section names and the name table", async () => {
  const [x86_64] = await archFixtures();
  const bytes = await Deno.readFile(x86_64!.program);
  const elf = parseElf(bytes);
  const view = (copy: Uint8Array) => new DataView(copy.buffer);
  // e_shstrndx pointing at a section that is not a string table.
  const wrongTable = bytes.slice();
  view(wrongTable).setUint16(62, 1, true);
  assert.throws(
    () => parseElf(wrongTable),
    /section 1 \(e_shstrndx\) has type 1, expected SHT_STRTAB \(3\)/,
  );
  // A name offset past the end of the name table.
  const badName = bytes.slice();
  const entry = elf.header.shoff + 5 * elf.header.shentsize;
  view(badName).setUint32(entry, 0xfffff, true);
  assert.throws(() => parseElf(badName), (error: unknown) => {
    assert.ok(error instanceof ElfFormatError);
    assert.match(
      error.message,
      /Cannot name section 5: sh_name 1048575 is past the end of the \d+-byte section name table/,
    );
    assert.equal(error.offset, entry);
    return true;
  });
  // A section past the end of the file.
  const badSection = bytes.slice();
  view(badSection).setBigUint64(entry + 32, 1n << 40n, true);
  assert.throws(() => parseElf(badSection), TruncatedElfError);
});

Deno.test("parseElf() gives a parse or an ElfFormatError for every truncation of real programs and cores", async () => {
  for (const fixture of await archFixtures()) {
    for (const path of [fixture.program, fixture.core]) {
      const bytes = await Deno.readFile(path);
      const small = bytes.length <= 32768;
      const lengths = small
        ? Array.from({ length: bytes.length }, (_, i) => i)
        : [
          ...Array.from({ length: 4096 }, (_, i) => i),
          ...Array.from({ length: 4096 }, (_, i) => bytes.length - 1 - i),
          ...Array.from(
            { length: 512 },
            (_, i) => Math.floor(bytes.length * i / 512),
          ),
        ];
      for (const length of lengths) {
        try {
          parseElf(bytes.subarray(0, length));
        } catch (error) {
          if (!(error instanceof ElfFormatError)) {
            throw new Error(
              `${fixture.arch} ${path} cut at ${length}: ${error}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("parseElf() survives thousands of seeded random mutations of real programs and cores", async () => {
  const random = seededRandom(20261126);
  let parsed = 0;
  let rejected = 0;
  for (const fixture of await archFixtures()) {
    for (const path of [fixture.program, fixture.core]) {
      const original = await Deno.readFile(path);
      const elf = parseElf(original);
      // Mutate where the structure is: the header, the tables and the names.
      const regions = [
        [0, 64],
        [elf.header.phoff, elf.header.phnum * elf.header.phentsize],
        [elf.header.shoff, elf.header.shnum * elf.header.shentsize],
        ...elf.sections.filter((s) => s.type === 3).map((
          s,
        ) => [s.offset, s.size]),
      ].filter(([, size]) => size! > 0) as [number, number][];
      for (let i = 0; i < 400; i++) {
        const bytes = original.slice();
        const flips = 1 + Math.floor(random() * 8);
        for (let f = 0; f < flips; f++) {
          const [start, size] = regions[Math.floor(random() * regions.length)]!;
          const at = start + Math.floor(random() * size);
          bytes[at] = random() < 0.5
            ? Math.floor(random() * 256)
            : bytes[at]! ^ (1 << Math.floor(random() * 8));
        }
        try {
          parseElf(bytes);
          parsed++;
        } catch (error) {
          if (!(error instanceof ElfFormatError)) {
            throw new Error(`${fixture.arch} mutation ${i}: ${error}`);
          }
          rejected++;
        }
      }
    }
  }
  // Both outcomes occur: the mutations reach the checks and the happy path.
  assert.ok(
    parsed > 100 && rejected > 100,
    `parsed ${parsed}, rejected ${rejected}`,
  );
});
