import assert from "node:assert/strict";
import {
  ArchiveFormatError,
  compressStream,
  decompress,
  detectFormat,
  type Format,
} from "../../lib/compress/mod.ts";
import {
  check,
  crashCore,
  fileDigest,
  joinBytes,
  liveCore,
  pythonInflate,
  runTool,
  tempDir,
} from "../_helpers.ts";

async function compressFileTo(
  input: string,
  output: string,
  format: Format,
  level?: number,
): Promise<void> {
  using source = await Deno.open(input);
  using sink = await Deno.open(output, { write: true, createNew: true });
  await source.readable.pipeThrough(
    compressStream({ format, ...(level === undefined ? {} : { level }) }),
  ).pipeTo(sink.writable);
}

async function decompressFileTo(input: string, output: string): Promise<void> {
  using source = await Deno.open(input);
  using sink = await Deno.open(output, { write: true, createNew: true });
  await decompress(source.readable, { label: `'${input}'` }).pipeTo(
    sink.writable,
  );
}

async function decompressBytes(bytes: Uint8Array): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of decompress(ReadableStream.from([bytes]))) {
    chunks.push(chunk);
  }
  return joinBytes(chunks);
}

Deno.test("compressStream() gzip of real cores passes gzip -t, 7z t and python, and round-trips", async () => {
  await using dir = await tempDir();
  const cores = [await crashCore(dir.path), await liveCore(dir.path)];
  for (const core of cores) {
    const digest = await fileDigest(core);
    for (const level of [undefined, 1, 9]) {
      const gz = `${core}.${level}.gz`;
      await compressFileTo(core, gz, "gzip", level);
      await check("gzip", ["-t", gz]);
      const sevenZip = await check("7z", ["t", gz]);
      assert.match(sevenZip, /Everything is Ok/);
      assert.equal(await pythonInflate(gz, 31), digest, `${gz} by python`);
      // 7-Zip reads only the first member: what it extracts must be whole.
      const extracted = await check("7z", ["e", "-so", gz]);
      assert.ok(extracted.length > 0);
      const restored = `${gz}.out`;
      await decompressFileTo(gz, restored);
      assert.equal(await fileDigest(restored), digest);
      const zcat = await runTool("sh", [
        "-c",
        `zcat '${gz}' | cmp - '${core}'`,
      ]);
      assert.equal(zcat.code, 0, zcat.stderr);
    }
  }
});

Deno.test("compressStream() zlib of a real core is inflated by python and refused by 7-Zip", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const digest = await fileDigest(core);
  for (const level of [undefined, 1, 9]) {
    const zz = `${core}.${level}.zz`;
    await compressFileTo(core, zz, "zlib", level);
    assert.equal(await pythonInflate(zz, 15), digest);
    const sevenZip = await runTool("7z", ["t", zz]);
    assert.notEqual(sevenZip.code, 0, "7-Zip must not open a zlib stream");
    const restored = `${zz}.out`;
    await decompressFileTo(zz, restored);
    assert.equal(await fileDigest(restored), digest);
  }
});

Deno.test("decompress() reads multi-member gzip written by gzip itself", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/a`, "first member\n");
  await Deno.writeTextFile(`${dir.path}/b`, "second member\n");
  await check("sh", [
    "-c",
    `cd '${dir.path}' && gzip -c a > ab.gz && gzip -c b >> ab.gz && : > empty && gzip -c empty >> ab.gz`,
  ]);
  const out = await decompressBytes(await Deno.readFile(`${dir.path}/ab.gz`));
  assert.equal(new TextDecoder().decode(out), "first member\nsecond member\n");
});

Deno.test("decompress() reads empty streams of both formats", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/empty`, new Uint8Array(0));
  for (const format of ["gzip", "zlib"] as const) {
    const out = `${dir.path}/empty.${format}`;
    await compressFileTo(`${dir.path}/empty`, out, format);
    assert.equal((await decompressBytes(await Deno.readFile(out))).length, 0);
    assert.equal(
      await pythonInflate(out, format === "gzip" ? 31 : 15),
      "0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  }
});

Deno.test("detectFormat() tells gzip and zlib from their first bytes only", () => {
  assert.equal(detectFormat(new Uint8Array([0x1f, 0x8b, 0x08])), "gzip");
  assert.equal(detectFormat(new Uint8Array([0x1f, 0x8b, 0x07])), undefined);
  for (const flg of [0x01, 0x5e, 0x9c, 0xda]) {
    assert.equal(detectFormat(new Uint8Array([0x78, flg])), "zlib");
  }
  assert.equal(detectFormat(new Uint8Array([0x78, 0x9d])), undefined);
  assert.equal(detectFormat(new Uint8Array([0x7f, 0x45, 0x4c])), undefined);
  assert.equal(detectFormat(new Uint8Array([0x1f])), undefined);
});

Deno.test("decompress() rejects corrupt and truncated data of both formats with ArchiveFormatError", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const gz = await Deno.readFile(
    (await compressFileTo(core, `${core}.gz`, "gzip"), `${core}.gz`),
  );
  const zz = await Deno.readFile(
    (await compressFileTo(core, `${core}.zz`, "zlib"), `${core}.zz`),
  );
  const flip = (bytes: Uint8Array, at: number) => {
    const copy = bytes.slice();
    copy[at < 0 ? copy.length + at : at]! ^= 0x01;
    return copy;
  };
  const join = (a: Uint8Array, b: Uint8Array) => {
    const out = new Uint8Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "empty input",
      new Uint8Array(0),
      /it is empty, expected a gzip or zlib stream/,
    ],
    [
      "an ELF core",
      await Deno.readFile(core),
      /found bytes 7f 45 4c at offset 0, expected a gzip/,
    ],
    [
      "gzip cut in its header",
      gz.subarray(0, 5),
      /truncated: the input ends at byte 5/,
    ],
    [
      "gzip cut in its data",
      gz.subarray(0, gz.length >> 1),
      /gzip stream is truncated/,
    ],
    [
      "gzip without its trailer",
      gz.subarray(0, gz.length - 8),
      /gzip stream is truncated/,
    ],
    [
      "gzip with a bad CRC-32",
      flip(gz, -6),
      /CRC-32 of the data does not match/,
    ],
    [
      "gzip with a bad length",
      flip(gz, -2),
      /length of the data does not match/,
    ],
    [
      "gzip with trailing junk",
      join(gz, new TextEncoder().encode("junk")),
      /not a gzip member after the end/,
    ],
    [
      "zlib cut in its data",
      zz.subarray(0, zz.length >> 1),
      /zlib stream is truncated/,
    ],
    [
      "zlib without its Adler-32",
      zz.subarray(0, zz.length - 4),
      /zlib stream is truncated/,
    ],
    [
      "zlib with a bad Adler-32",
      flip(zz, -1),
      /Adler-32 of the data does not match/,
    ],
    [
      "zlib with trailing junk",
      join(zz, new TextEncoder().encode("junk")),
      /found data after the end of the zlib stream/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    await assert.rejects(decompressBytes(bytes), (error: unknown) => {
      assert.ok(error instanceof ArchiveFormatError, `${what}: ${error}`);
      assert.match(error.message, message, what);
      assert.ok(!error.message.includes("\n"), what);
      return true;
    }, what);
  }
  // A flipped bit anywhere in the deflate data either fails (bad code or
  // checksum) or, where deflate ignores the bit (padding), changes nothing:
  // never wrong bytes delivered as good.
  const original = await Deno.readFile(core);
  let rejected = 0;
  for (let i = 0; i < 40; i++) {
    const at = 10 + Math.floor((gz.length - 18) * i / 40);
    try {
      const out = await decompressBytes(flip(gz, at));
      assert.deepEqual(out, original, `flip at ${at} gave other bytes`);
    } catch (error) {
      assert.ok(error instanceof ArchiveFormatError, `flip at ${at}: ${error}`);
      rejected++;
    }
  }
  assert.ok(rejected >= 30, `only ${rejected} of 40 flips were rejected`);
});
