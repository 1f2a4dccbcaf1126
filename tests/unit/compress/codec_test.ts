/**
 * Reading both formats as node:zlib writes them, and the errors of data
 * that is not what it claims: one line each, saying what was expected.
 */
import assert from "node:assert/strict";
import { deflateSync, gzipSync } from "node:zlib";
import {
  ArchiveFormatError,
  decompress,
  detectFormat,
  formatExtension,
} from "../../../lib/compress/mod.ts";
import {
  chunked,
  collect,
  randomBytes,
  sameBytes,
  textBytes,
} from "../_temp.ts";

const read = (bytes: Uint8Array, label?: string) =>
  collect(
    decompress(chunked(bytes, 7000), label === undefined ? {} : { label }),
  );

function oneLine(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ArchiveFormatError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), error.message);
    return true;
  };
}

Deno.test("detectFormat() knows every header node:zlib writes, and nothing else", () => {
  const data = textBytes(1000);
  for (let level = 0; level <= 9; level++) {
    assert.equal(
      detectFormat(gzipSync(data, { level })),
      "gzip",
      `gzip ${level}`,
    );
    assert.equal(
      detectFormat(deflateSync(data, { level })),
      "zlib",
      `zlib ${level}`,
    );
    for (const windowBits of [9, 10, 12, 15]) {
      const zlib = deflateSync(data, { level, windowBits });
      assert.equal(detectFormat(zlib), "zlib", `window ${windowBits}`);
    }
  }
  const others: [string, number[]][] = [
    ["empty", []],
    ["one byte", [0x1f]],
    ["gzip magic, method 7", [0x1f, 0x8b, 7]],
    ["zip", [0x50, 0x4b, 3, 4]],
    ["bzip2", [0x42, 0x5a, 0x68]],
    ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]],
    ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
    ["ELF", [0x7f, 0x45, 0x4c, 0x46]],
    ["zlib with a preset dictionary", [0x78, 0xbb]],
    ["zlib, window of 64 KiB", [0x88, 0x1c]],
    ["zlib, bad check bits", [0x78, 0x9d]],
    ["text", [...new TextEncoder().encode("hello")]],
  ];
  for (const [what, bytes] of others) {
    assert.equal(detectFormat(new Uint8Array(bytes)), undefined, what);
  }
  assert.equal(formatExtension("gzip"), ".gz");
  assert.equal(formatExtension("zlib"), ".zz");
});

Deno.test("decompress() reads node:zlib's gzip, several members, and zlib, at every level", async () => {
  const data = new Uint8Array(120_000);
  data.set(textBytes(60_000, 1));
  data.set(randomBytes(30_000), 70_000);
  for (const level of [1, 6, 9]) {
    const gz = gzipSync(data, { level });
    assert.equal(sameBytes(await read(gz), data), undefined, `gzip ${level}`);
    const zz = deflateSync(data, { level });
    assert.equal(sameBytes(await read(zz), data), undefined, `zlib ${level}`);
  }
  // Members one after another are one file, as gzip and cat make them.
  const parts = [textBytes(5000, 2), new Uint8Array(0), randomBytes(3000)];
  const members = new Uint8Array(parts.flatMap((p) => [...gzipSync(p)]));
  const expected = new Uint8Array(parts.flatMap((p) => [...p]));
  assert.equal(sameBytes(await read(members), expected), undefined);
  // Empty streams of both formats.
  assert.equal((await read(gzipSync(new Uint8Array(0)))).length, 0);
  assert.equal((await read(deflateSync(new Uint8Array(0)))).length, 0);
});

Deno.test("decompress() rejects empty, foreign, truncated and corrupt data in one line", async () => {
  const data = textBytes(50_000, 3);
  // Copies: a Buffer's slice() is a view.
  const gz = new Uint8Array(gzipSync(data));
  const zz = new Uint8Array(deflateSync(data));
  await assert.rejects(
    () => read(new Uint8Array(0), "core.gz"),
    oneLine(
      /^Cannot decompress core\.gz: it is empty, expected a gzip or zlib stream$/,
    ),
  );
  await assert.rejects(
    () => read(new TextEncoder().encode("PK\x03\x04 zip file")),
    oneLine(
      /found bytes 50 4b 03 at offset 0, expected a gzip \(1f 8b 08\) or zlib \(78 xx\) header/,
    ),
  );
  for (const [format, bytes] of [["gzip", gz], ["zlib", zz]] as const) {
    await assert.rejects(
      () => read(bytes.subarray(0, bytes.length - 100)),
      oneLine(
        new RegExp(
          `the ${format} stream is truncated: the input ends at byte \\d+`,
        ),
      ),
      `${format} truncated`,
    );
  }
  const badCrc = gz.slice();
  badCrc[badCrc.length - 6]! ^= 1;
  await assert.rejects(
    () => read(badCrc),
    oneLine(/the CRC-32 of the data does not match the gzip trailer/),
  );
  const badLength = gz.slice();
  badLength[badLength.length - 3]! ^= 1;
  await assert.rejects(
    () => read(badLength),
    oneLine(/the length of the data does not match the gzip trailer/),
  );
  const badAdler = zz.slice();
  badAdler[badAdler.length - 1]! ^= 1;
  await assert.rejects(
    () => read(badAdler),
    oneLine(/the Adler-32 of the data does not match the zlib trailer/),
  );
  // Bytes after a zlib stream, or a gzip member followed by other data.
  await assert.rejects(
    () => read(new Uint8Array([...zz, 1, 2, 3, 4, 5])),
    oneLine(/found data after the end of the zlib stream/),
  );
  await assert.rejects(
    () =>
      read(
        new Uint8Array([...gz, ...new TextEncoder().encode("trailing junk")]),
      ),
    oneLine(
      /found data that is not a gzip member after the end of the gzip stream, expected another member \(1f 8b\) or the end of the input$/,
    ),
  );
});
