import assert from "node:assert/strict";
import { FileAccessError } from "../../lib/fs/mod.ts";
import { ElfFormatError } from "../../lib/elf/mod.ts";
import { MAX_UUID_BYTES, readProgramInfo } from "../../lib/elf/mod.ts";
import { archFixtures } from "../_fixtures.ts";
import { buildCrasher, check, tempDir } from "../_helpers.ts";
import { readelfBuildId } from "../_readelf.ts";

/** objcopy's way: a .uuid section from a file's bytes. */
async function objcopyUuid(
  program: string,
  out: string,
  bytes: Uint8Array,
): Promise<void> {
  const file = `${out}.uuid-bytes`;
  await Deno.writeFile(file, bytes);
  await check("objcopy", ["--add-section", `.uuid=${file}`, program, out]);
}

Deno.test("readProgramInfo() reads .uuid byte for byte as objcopy added it, with or without a newline", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  const cases = [
    new TextEncoder().encode("3f2b0c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f\n"),
    new TextEncoder().encode("no-newline"),
    new Uint8Array([0, 1, 2, 0xff, 0x0a, 0]),
  ];
  for (const [i, bytes] of cases.entries()) {
    const stamped = `${dir.path}/stamped${i}`;
    await objcopyUuid(program, stamped, bytes);
    const info = await readProgramInfo(stamped);
    assert.deepEqual(info.uuid, bytes);
    assert.equal(info.uuidTruncated, false);
    assert.equal(info.buildId, await readelfBuildId(program));
  }
});

Deno.test("readProgramInfo() cuts a long .uuid at 4 KiB and says so", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  const long = new Uint8Array(10000).fill(0x41);
  await objcopyUuid(program, `${dir.path}/long`, long);
  const info = await readProgramInfo(`${dir.path}/long`);
  assert.equal(info.uuid?.length, MAX_UUID_BYTES);
  assert.equal(info.uuidTruncated, true);
});

Deno.test("readProgramInfo() works on stripped programs and programs of every architecture", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  await objcopyUuid(
    program,
    `${dir.path}/stamped`,
    new TextEncoder().encode("id\n"),
  );
  await check("strip", ["-o", `${dir.path}/stripped`, `${dir.path}/stamped`]);
  const stripped = await readProgramInfo(`${dir.path}/stripped`);
  assert.equal(new TextDecoder().decode(stripped.uuid), "id\n");
  assert.equal(stripped.buildId, await readelfBuildId(program));
  for (const fixture of await archFixtures()) {
    const info = await readProgramInfo(fixture.program);
    assert.equal(info.uuid, undefined, `${fixture.arch}: no .uuid is no error`);
    assert.equal(
      info.buildId,
      await readelfBuildId(fixture.program),
      fixture.arch,
    );
  }
});

Deno.test("readProgramInfo() reads systemd's .note.package metadata", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  const json =
    '{"type":"deb","name":"gzcoredump-test","version":"1.2-3","architecture":"amd64"}';
  const desc = new TextEncoder().encode(json + "\0");
  const padded = new Uint8Array(Math.ceil(desc.length / 4) * 4);
  padded.set(desc);
  const note = new Uint8Array(16 + padded.length);
  const view = new DataView(note.buffer);
  view.setUint32(0, 4, true);
  view.setUint32(4, padded.length, true);
  view.setUint32(8, 0xcafe1a7e, true);
  note.set(new TextEncoder().encode("FDO\0"), 12);
  note.set(padded, 16);
  await Deno.writeFile(`${dir.path}/note`, note);
  await check("objcopy", [
    "--add-section",
    `.note.package=${dir.path}/note`,
    program,
    `${dir.path}/packaged`,
  ]);
  const readelf = await check("readelf", ["-n", `${dir.path}/packaged`]);
  assert.match(readelf, /FDO\s+0x[0-9a-f]+\s+FDO_PACKAGING_METADATA/);
  const info = await readProgramInfo(`${dir.path}/packaged`);
  assert.equal(info.packageMetadata, json);
});

Deno.test("readProgramInfo() refuses what is not a regular ELF file, without blocking", async () => {
  await using dir = await tempDir();
  await check("mkfifo", [`${dir.path}/fifo`]);
  await assert.rejects(
    readProgramInfo(`${dir.path}/fifo`),
    (error: unknown) => {
      assert.ok(error instanceof FileAccessError);
      assert.match(error.message, /it is not a regular file/);
      return true;
    },
  );
  await assert.rejects(
    readProgramInfo(`${dir.path}/missing`),
    /no such file or directory/,
  );
  await Deno.writeTextFile(`${dir.path}/script`, "#!/bin/sh\n");
  await assert.rejects(readProgramInfo(`${dir.path}/script`), ElfFormatError);
});
