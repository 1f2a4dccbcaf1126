import assert from "node:assert/strict";
import { parseElf, PT_NOTE } from "../../lib/elf/mod.ts";
import { ElfFormatError } from "../../lib/elf/mod.ts";
import {
  AT_ENTRY,
  AT_PAGESZ,
  buildIdOf,
  decodeCoreNotes,
  type ElfNote,
  parseNotes,
} from "../../lib/elf/mod.ts";
import { archFixtures } from "../_fixtures.ts";
import { euReadelfNotes, readelfBuildId } from "../_readelf.ts";

function coreNotes(bytes: Uint8Array): ElfNote[] {
  const elf = parseElf(bytes);
  return elf.programs.filter((p) => p.type === PT_NOTE).flatMap((p) =>
    parseNotes(bytes.subarray(p.offset, p.offset + p.filesz), {
      littleEndian: elf.header.littleEndian,
      baseOffset: p.offset,
      align: p.align === 8n ? 8 : 4,
    })
  );
}

Deno.test("decodeCoreNotes() agrees with eu-readelf on every architecture's core", async () => {
  for (const fixture of await archFixtures()) {
    const what = `${fixture.arch} (${fixture.coreBy})`;
    const bytes = await Deno.readFile(fixture.core);
    const notes = decodeCoreNotes(coreNotes(bytes), parseElf(bytes).header);
    const golden = await euReadelfNotes(fixture.core);
    assert.ok(notes.threads.length >= 1, what);
    assert.equal(notes.threads[0]!.signal, 11, `${what}: SIGSEGV`);
    assert.ok(notes.process, what);
    // qemu names its core after the pid it crashed with.
    const qemuPid = /_(\d+)\.core$/.exec(fixture.core)?.[1];
    if (qemuPid !== undefined) {
      assert.equal(notes.process.pid, Number(qemuPid), what);
      assert.equal(notes.threads[0]!.tid, Number(qemuPid), what);
    }
    if (golden.process === undefined) {
      // This elfutils cannot decode this machine's CORE notes (mips): the
      // pid above, the command name and the signal are the cross-check.
      assert.equal(notes.process.comm, `crash_${fixture.arch}`, what);
      assert.match(
        notes.process.args,
        new RegExp(`crash_${fixture.arch} tiny$`),
        what,
      );
      continue;
    }
    assert.deepEqual(
      notes.threads.map((t) => ({ pid: t.tid, cursig: t.signal })),
      golden.threads,
      what,
    );
    assert.equal(notes.process.pid, golden.process.pid, what);
    assert.equal(notes.process.ppid, golden.process.ppid, what);
    assert.equal(notes.process.uid, golden.process.uid, what);
    assert.equal(notes.process.gid, golden.process.gid, what);
    assert.equal(notes.process.comm, golden.process.fname, what);
    assert.equal(
      notes.process.comm,
      `crash_${fixture.arch}`.slice(0, 15),
      what,
    );
    assert.equal(notes.process.args, golden.process.psargs, what);
    if (golden.siginfo) {
      assert.ok(notes.signal, what);
      assert.equal(notes.signal.signo, golden.siginfo.signo, what);
      assert.equal(notes.signal.errno, golden.siginfo.errno, what);
      assert.equal(notes.signal.code, golden.siginfo.code, what);
      assert.equal(notes.signal.address, 0n, `${what}: NULL was dereferenced`);
    }
    assert.equal(notes.auxv.get(AT_ENTRY), golden.auxv.get("ENTRY"), what);
    assert.equal(notes.auxv.get(AT_PAGESZ), golden.auxv.get("PAGESZ"), what);
    assert.equal(notes.auxv.get(3), golden.auxv.get("PHDR"), what);
    assert.equal(notes.auxv.get(5), golden.auxv.get("PHNUM"), what);
    assert.deepEqual(
      notes.files.map((f) => ({
        start: f.start,
        end: f.end,
        offset: f.fileOffset,
        path: f.path,
      })),
      golden.files,
      what,
    );
    if (fixture.coreBy === "kernel") {
      assert.ok(notes.signal, `${what}: the kernel writes NT_SIGINFO`);
      assert.ok(
        notes.files.some((f) => f.path === fixture.program),
        `${what}: NT_FILE lists the program`,
      );
    }
  }
});

Deno.test("buildIdOf() reads the same GNU build-id as readelf -n on every architecture", async () => {
  for (const fixture of await archFixtures()) {
    const bytes = await Deno.readFile(fixture.program);
    const elf = parseElf(bytes);
    const notes = elf.programs.filter((p) => p.type === PT_NOTE).flatMap((p) =>
      parseNotes(bytes.subarray(p.offset, p.offset + p.filesz), {
        littleEndian: elf.header.littleEndian,
        align: p.align === 8n ? 8 : 4,
      })
    );
    const expected = await readelfBuildId(fixture.program);
    assert.ok(expected, `${fixture.arch}: gcc writes a build-id`);
    assert.equal(buildIdOf(notes), expected, fixture.arch);
  }
});

Deno.test("parseNotes() reads 8-byte aligned notes (.note.gnu.property) without padding the name", () => {
  const area = new Uint8Array(16 + 16 + 24);
  const view = new DataView(area.buffer);
  // NT_GNU_PROPERTY_TYPE_0, "GNU\0", 16-byte descriptor, then a build-id.
  view.setUint32(0, 4, true);
  view.setUint32(4, 16, true);
  view.setUint32(8, 5, true);
  area.set(new TextEncoder().encode("GNU\0"), 12);
  view.setUint32(32, 4, true);
  view.setUint32(36, 4, true);
  view.setUint32(40, 3, true);
  area.set(new TextEncoder().encode("GNU\0"), 44);
  area.set([0xde, 0xad, 0xbe, 0xef], 48);
  const notes = parseNotes(area.subarray(0, 52), {
    littleEndian: true,
    align: 8,
  });
  assert.equal(notes.length, 2);
  assert.equal(notes[0]!.desc.length, 16);
  assert.equal(notes[0]!.desc.byteOffset, 16);
  assert.equal(buildIdOf(notes), "deadbeef");
});

Deno.test("parseNotes() rejects sizes that run past the area, naming the offset", () => {
  const area = new Uint8Array(24);
  const view = new DataView(area.buffer);
  view.setUint32(0, 4, false);
  view.setUint32(4, 0xffffff00, false);
  view.setUint32(8, 1, false);
  assert.throws(
    () => parseNotes(area, { littleEndian: false, baseOffset: 0x5f0 }),
    (error: unknown) => {
      assert.ok(error instanceof ElfFormatError);
      assert.match(
        error.message,
        /Cannot read note at offset 0x5f0: namesz 4 and descsz 4294967040 run past the 24-byte note area/,
      );
      assert.equal(error.offset, 0x5f0);
      return true;
    },
  );
});
