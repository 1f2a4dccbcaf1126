import assert from "node:assert/strict";
import {
  adler32Combine,
  adler32Zeros,
  crc32,
  crc32Combine,
  crc32Zeros,
} from "../../lib/compress/mod.ts";
import { adler32 } from "../../lib/compress/mod.ts";
import { check, seededRandom, tempDir } from "../_helpers.ts";

/** python's zlib.crc32 and zlib.adler32 of a file. */
async function pythonChecksums(
  path: string,
): Promise<{ crc: number; adler: number }> {
  const out = await check("python3", [
    "-c",
    "import zlib,sys;d=open(sys.argv[1],'rb').read();print(zlib.crc32(d),zlib.adler32(d))",
    path,
  ]);
  const [crc, adler] = out.trim().split(" ").map(Number);
  return { crc: crc!, adler: adler! };
}

Deno.test("crc32Combine() and adler32Combine() join block checksums as python computes the whole", async () => {
  await using dir = await tempDir();
  const random = seededRandom(7);
  const data = new Uint8Array(3_000_000);
  for (let i = 0; i < data.length; i++) {
    data[i] = random() < 0.3 ? 0 : Math.floor(random() * 256);
  }
  await Deno.writeFile(`${dir.path}/data`, data);
  const expected = await pythonChecksums(`${dir.path}/data`);
  for (
    const cuts of [[0], [1], [65536, 1 << 20], [1, 2, 3, 999_999, 2_999_999], [
      1 << 20,
      2 << 20,
    ]]
  ) {
    let crc = 0;
    let adler = 1;
    let start = 0;
    for (const end of [...cuts, data.length]) {
      const block = data.subarray(start, end);
      crc = crc32Combine(crc, crc32(0, block), block.length);
      adler = adler32Combine(adler, adler32(1, block), block.length);
      start = end;
    }
    assert.equal(crc, expected.crc >>> 0, `crc, cuts ${cuts}`);
    assert.equal(adler, expected.adler, `adler, cuts ${cuts}`);
  }
});

Deno.test("crc32Zeros() and adler32Zeros() extend checksums over zeros without reading them", async () => {
  await using dir = await tempDir();
  const head = new TextEncoder().encode("core header");
  for (const zeros of [0, 1, 4096, 65521, 65522, 1 << 20, 5_000_000]) {
    const data = new Uint8Array(head.length + zeros);
    data.set(head);
    await Deno.writeFile(`${dir.path}/data`, data);
    const expected = await pythonChecksums(`${dir.path}/data`);
    assert.equal(
      crc32Zeros(crc32(0, head), zeros),
      expected.crc >>> 0,
      `${zeros} zeros`,
    );
    assert.equal(
      adler32Zeros(adler32(1, head), zeros),
      expected.adler,
      `${zeros} zeros`,
    );
  }
});
