/**
 * The compressor's output, checked by node:zlib: one gzip member or one
 * zlib stream that inflates to the input, whose trailer holds the input's
 * checksum and length, at several levels and block sizes.
 */
import assert from "node:assert/strict";
import {
  crc32 as zlibCrc32,
  deflateSync,
  gunzipSync,
  inflateRawSync,
  inflateSync,
} from "node:zlib";
import {
  adler32,
  compress,
  type CompressEnd,
  extraFieldEnd,
  parallelCompress,
  zeroBlock,
  zlibHeader,
} from "../../../lib/compress/mod.ts";
import {
  deflateBlock,
  looksIncompressible,
  storedBlocks,
} from "../../../lib/compress/_deflate_block.ts";
import { disposeChunk } from "../../../lib/util/mod.ts";
import {
  chunked,
  collect,
  randomBytes,
  sameBytes,
  seeded,
  textBytes,
  wholeEnd,
} from "../_temp.ts";

const FINAL = new Uint8Array([0x03, 0x00]);

/** Inputs that exercise the compressor's paths, named for messages. */
function inputs(): [string, Uint8Array][] {
  const mixed = new Uint8Array(300_000);
  mixed.set(textBytes(100_000, 5), 0);
  mixed.set(randomBytes(70_000), 180_000);
  return [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([42])],
    ["zeros", new Uint8Array(200_001)],
    ["text", textBytes(250_000, 2)],
    ["random", randomBytes(140_000)],
    ["mixed", mixed],
  ];
}

/** Checks a gzip member against its input, field by field. */
function checkGzip(gz: Uint8Array, data: Uint8Array, what: string): void {
  assert.deepEqual([...gz.subarray(0, 3)], [0x1f, 0x8b, 8], what);
  assert.equal(sameBytes(gunzipSync(gz), data), undefined, what);
  // One member: one raw deflate stream between the header and the trailer.
  const raw = gz.subarray(extraFieldEnd(gz), gz.length - 8);
  assert.equal(sameBytes(inflateRawSync(raw), data), undefined, `${what}: raw`);
  const trailer = new DataView(gz.buffer, gz.byteOffset + gz.length - 8, 8);
  assert.equal(
    trailer.getUint32(0, true),
    zlibCrc32(data) >>> 0,
    `${what}: CRC`,
  );
  assert.equal(trailer.getUint32(4, true), data.length, `${what}: ISIZE`);
}

/** Checks a zlib stream against its input. */
function checkZlib(zz: Uint8Array, data: Uint8Array, what: string): void {
  assert.equal((zz[0]! * 256 + zz[1]!) % 31, 0, `${what}: FCHECK`);
  assert.equal(sameBytes(inflateSync(zz), data), undefined, what);
  const trailer = new DataView(zz.buffer, zz.byteOffset + zz.length - 4, 4);
  assert.equal(trailer.getUint32(0, false), adler32(1, data), `${what}: Adler`);
}

Deno.test("parallelCompress() in this thread writes gzip node:zlib reads, at every level and block size", async () => {
  for (const [name, data] of inputs()) {
    for (const level of [1, 5, 9]) {
      for (const blockSize of [4096, 65536, 1 << 20]) {
        const what = `${name}, level ${level}, blocks of ${blockSize}`;
        let end: CompressEnd | undefined;
        const gz = await collect(
          parallelCompress(chunked(data, 30_000), {
            level,
            blockSize,
            inline: true,
            onEnd: (e) => end = e,
          }),
        );
        checkGzip(gz, data, what);
        assert.equal(
          gz[8],
          level === 9 ? 2 : level === 1 ? 4 : 0,
          `${what}: XFL`,
        );
        assert.deepEqual(end, wholeEnd(data.length), what);
      }
    }
  }
});

Deno.test("parallelCompress() in this thread writes zlib node:zlib reads", async () => {
  for (const [name, data] of inputs()) {
    for (const level of [1, 6, 9]) {
      const zz = await collect(
        parallelCompress(chunked(data), {
          format: "zlib",
          level,
          blockSize: 65536,
          inline: true,
        }),
      );
      checkZlib(zz, data, `${name}, level ${level}`);
      assert.deepEqual([...zz.subarray(0, 2)], [...zlibHeader(level)]);
    }
  }
});

Deno.test("parallelCompress() with workers writes the same bytes as in this thread", async () => {
  const data = inputs().at(-1)![1];
  for (const format of ["gzip", "zlib"] as const) {
    const options = { format, level: 5, blockSize: 65536 };
    const here = await collect(
      parallelCompress(chunked(data), { ...options, inline: true }),
    );
    const workers = await collect(
      parallelCompress(chunked(data), { ...options, jobs: 2 }),
    );
    assert.equal(sameBytes(workers, here), undefined, format);
    if (format === "gzip") checkGzip(workers, data, "workers");
    else checkZlib(workers, data, "workers");
  }
});

Deno.test("compress() writes gzip and zlib node:zlib reads, with CompressionStream and in blocks", async () => {
  const data = textBytes(180_000, 6);
  const cases = [
    { jobs: 1 },
    { jobs: 1, level: 3 },
    { jobs: 1, inline: true },
    { jobs: 2, level: 9 },
  ];
  for (const options of cases) {
    for (const format of ["gzip", "zlib"] as const) {
      let end: CompressEnd | undefined;
      const out = await collect(
        compress(chunked(data), { ...options, format, onEnd: (e) => end = e }),
      );
      const what = `${format} ${JSON.stringify(options)}`;
      if (format === "gzip") checkGzip(out, data, what);
      else checkZlib(out, data, what);
      assert.deepEqual(end, wholeEnd(data.length), what);
    }
  }
});

Deno.test("parallelCompress() with maxOutput ends early, complete, within the budget", async () => {
  const data = new Uint8Array(400_000);
  data.set(textBytes(150_000, 9));
  data.set(randomBytes(250_000), 150_000);
  for (const format of ["gzip", "zlib"] as const) {
    for (const budget of [200, 5_000, 60_000, 200_000]) {
      let end: CompressEnd | undefined;
      const out = await collect(
        parallelCompress(chunked(data), {
          format,
          blockSize: 65536,
          inline: true,
          maxOutput: () => budget,
          onEnd: (e) => end = e,
        }),
      );
      const what = `${format}, budget ${budget}`;
      assert.ok(out.length <= budget, `${what}: ${out.length} bytes`);
      assert.ok(end !== undefined && end.cut, what);
      const prefix = data.subarray(0, end.inputBytes);
      if (format === "gzip") checkGzip(out, prefix, what);
      else checkZlib(out, prefix, what);
    }
  }
});

Deno.test("deflateBlock() output joins into one stream, and storedBlocks() frames bytes as RFC 1951 says", () => {
  const blocks = [
    textBytes(70_000, 1),
    randomBytes(70_000),
    new Uint8Array(65_536),
    textBytes(10, 2),
    randomBytes(131_071),
  ];
  for (const level of [1, 9]) {
    const parts = blocks.map((b) => deflateBlock(b, { level, adler: true }));
    for (const [i, part] of parts.entries()) {
      assert.equal(part.adler, adler32(1, blocks[i]!), `block ${i} Adler`);
      assert.equal(part.deflated.byteOffset, 0, "a buffer of its own");
      assert.equal(part.deflated.buffer.byteLength, part.deflated.length);
    }
    const joined = new Uint8Array(
      [...parts.flatMap((p) => [...p.deflated]), ...FINAL],
    );
    const expected = new Uint8Array(blocks.flatMap((b) => [...b]));
    assert.equal(sameBytes(inflateRawSync(joined), expected), undefined);
  }
  assert.equal(
    deflateBlock(randomBytes(100), { level: 5, adler: false }).adler,
    0,
  );
  // A caller's answer to whether the block will shrink is taken as given:
  // text stored when told so, random bytes deflated when told so.
  const text = textBytes(200_000, 3);
  const told = deflateBlock(text, {
    level: 5,
    adler: true,
    incompressible: true,
  });
  assert.equal(sameBytes(told.deflated, storedBlocks(text)), undefined);
  assert.equal(told.adler, adler32(1, text));
  const noise = randomBytes(200_000);
  const forced = deflateBlock(noise, {
    level: 5,
    adler: false,
    incompressible: false,
  });
  // zlib's own framing (it may store random bytes too), not ours.
  assert.notEqual(sameBytes(forced.deflated, storedBlocks(noise)), undefined);
  assert.equal(
    sameBytes(
      inflateRawSync(new Uint8Array([...forced.deflated, ...FINAL])),
      noise,
    ),
    undefined,
  );
  // Stored blocks: 5 bytes of header per 65535 bytes, LEN and its complement.
  for (const length of [0, 1, 65535, 65536, 200_000]) {
    const data = randomBytes(length);
    const stored = storedBlocks(data);
    const count = Math.max(1, Math.ceil(length / 65535));
    assert.equal(stored.length, length + 5 * count, `length ${length}`);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const view = new DataView(stored.buffer, stored.byteOffset + at);
      assert.equal(stored[at], 0, "BFINAL 0, BTYPE 00");
      const len = view.getUint16(1, true);
      assert.equal(view.getUint16(3, true), len ^ 0xffff);
      at += 5 + len;
    }
    assert.equal(at, stored.length);
    const stream = new Uint8Array([...stored, ...FINAL]);
    assert.equal(sameBytes(inflateRawSync(stream), data), undefined);
  }
});

Deno.test("looksIncompressible() says true for random bytes, false for text, zeros and small blocks", () => {
  for (const length of [64 << 10, 256 << 10, 1 << 20]) {
    assert.equal(
      looksIncompressible(randomBytes(length)),
      true,
      `random ${length}`,
    );
    assert.equal(
      looksIncompressible(textBytes(length)),
      false,
      `text ${length}`,
    );
    assert.equal(
      looksIncompressible(new Uint8Array(length)),
      false,
      `zeros ${length}`,
    );
  }
  // Too small to be worth sampling: always deflated.
  assert.equal(looksIncompressible(randomBytes((64 << 10) - 1)), false);
  // Already compressed data will not shrink either.
  const gz = deflateSync(randomBytes(300_000), { level: 1 });
  assert.equal(looksIncompressible(gz), true);
  // Random bytes with text in the middle: one sample shrinks, all is deflated.
  const half = randomBytes(1 << 20);
  half.set(textBytes(300_000), 400_000);
  assert.equal(looksIncompressible(half), false);
  // Bytes of only 64 values: few bits a byte, shrink by Huffman coding.
  const random = seeded(4);
  const narrow = new Uint8Array(1 << 18).map(() => Math.floor(random() * 64));
  assert.equal(looksIncompressible(narrow), false);
  // And what it says matters: stored blocks are no larger than deflated.
  const data = randomBytes(1 << 18);
  assert.ok(
    deflateBlock(data, { level: 9, adler: false }).deflated.length <=
      storedBlocks(data).length,
  );
});

Deno.test("zeroBlock() is the deflate data of zeros, the same bytes every time", () => {
  for (const [length, level] of [[4096, 1], [65536, 5], [1 << 20, 9]]) {
    const block = zeroBlock(length!, level!);
    assert.equal(sameBytes(zeroBlock(length!, level!), block), undefined);
    const zeros = inflateRawSync(new Uint8Array([...block, ...FINAL]));
    assert.equal(zeros.length, length);
    assert.ok(zeros.every((b) => b === 0));
    assert.ok(
      block.length <= length! / 500 + 64,
      `zeros shrink: ${block.length}`,
    );
  }
});

Deno.test("zlibHeader() writes the two bytes node:zlib writes at each level", () => {
  const data = textBytes(100);
  for (let level = 1; level <= 9; level++) {
    const node = deflateSync(data, { level });
    assert.deepEqual(
      [...zlibHeader(level)],
      [node[0], node[1]],
      `level ${level}`,
    );
  }
  const standard = deflateSync(data);
  assert.deepEqual([...zlibHeader(undefined)], [standard[0], standard[1]]);
});

Deno.test("parallelCompress() gives each block's deflate data away: the sink may free it, the shared bytes stay", async () => {
  const data = inputs().at(-1)![1];
  const blockSize = 65536;
  let dataBlocks = 0;
  for (let at = 0; at < data.length; at += blockSize) {
    if (data.subarray(at, at + blockSize).some((b) => b !== 0)) dataBlocks++;
  }
  // Twice: a shared buffer (a header, the zero block) freed by the first
  // run would break the second.
  for (const run of [1, 2]) {
    for (const jobs of [1, 2]) {
      const stream = parallelCompress(chunked(data), {
        level: 5,
        blockSize,
        inline: jobs === 1,
        jobs,
      });
      const copies: Uint8Array[] = [];
      let freed = 0;
      for await (const chunk of stream) {
        copies.push(chunk.slice());
        if (disposeChunk(chunk)) {
          freed++;
          assert.equal(chunk.length, 0, "a freed chunk is empty");
        }
      }
      assert.equal(freed, dataBlocks, `run ${run}, jobs ${jobs}: blocks freed`);
      const gz = new Uint8Array(copies.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const copy of copies) {
        gz.set(copy, at);
        at += copy.length;
      }
      checkGzip(gz, data, `run ${run}, jobs ${jobs}`);
    }
  }
});
