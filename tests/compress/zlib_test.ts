import assert from "node:assert/strict";
import {
  adler32,
  zlibCompressStream,
  zlibHeader,
} from "../../lib/compress/mod.ts";
import { check, pythonInflate, tempDir } from "../_helpers.ts";

Deno.test("adler32() matches python's zlib.adler32 on data split at every boundary", async () => {
  const data = new Uint8Array(20000);
  let seed = 42;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    // Long runs of 0xff push the sums towards overflow before each modulo.
    data[i] = i < 12000 ? 0xff : seed >>> 24;
  }
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/data`, data);
  const expected = Number(
    await check("python3", [
      "-c",
      "import zlib,sys;print(zlib.adler32(open(sys.argv[1],'rb').read()))",
      `${dir.path}/data`,
    ]),
  );
  assert.equal(adler32(1, data), expected);
  for (const split of [0, 1, 5551, 5552, 5553, 12000, 19999, 20000]) {
    const first = adler32(1, data.subarray(0, split));
    assert.equal(
      adler32(first, data.subarray(split)),
      expected,
      `split ${split}`,
    );
  }
  assert.equal(adler32(1, new Uint8Array(0)), 1);
});

Deno.test("zlibHeader() writes valid check bits and zlib's level hint", () => {
  const cases: [number | undefined, number][] = [
    [undefined, 0x9c],
    [1, 0x01],
    [2, 0x5e],
    [5, 0x5e],
    [6, 0x9c],
    [7, 0xda],
    [9, 0xda],
  ];
  for (const [level, flg] of cases) {
    const header = zlibHeader(level);
    assert.deepEqual([...header], [0x78, flg], `level ${level}`);
    assert.equal((header[0]! * 256 + header[1]!) % 31, 0);
  }
});

Deno.test("zlibCompressStream() output is one complete zlib stream for python, at every level", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/input`;
  // Text, then zeros, then bytes that do not compress.
  const data = new Uint8Array(300000);
  data.set(new TextEncoder().encode("gzcoredump ".repeat(10000)));
  crypto.getRandomValues(data.subarray(200000, 265536));
  await Deno.writeFile(input, data);
  const expected = (await check("python3", [
    "-c",
    "import hashlib,sys;d=open(sys.argv[1],'rb').read();print(len(d),hashlib.sha256(d).hexdigest())",
    input,
  ])).trim();
  for (const level of [undefined, 1, 6, 9]) {
    const out = `${dir.path}/out.${level}.zz`;
    using source = await Deno.open(input);
    using sink = await Deno.open(out, { write: true, createNew: true });
    await source.readable.pipeThrough(
      zlibCompressStream(level === undefined ? {} : { level }),
    ).pipeTo(sink.writable);
    assert.equal(await pythonInflate(out, 15), expected, `level ${level}`);
  }
});
