/**
 * The chunk index in the gzip header: built by the compressor, read back by
 * readGzipIndex, each chunk inflated on its own by node:zlib, and a header
 * that does not add up ignored, or rejected in one line when its chunks lie.
 */
import assert from "node:assert/strict";
import { constants, gunzipSync, inflateRawSync } from "node:zlib";
import { writeFileAtomic } from "../../../lib/fs/mod.ts";
import {
  ArchiveFormatError,
  decompress,
  extraFieldEnd,
  type GzipIndex,
  indexBuilder,
  indexedGzipHeader,
  MAX_INDEX_CAPACITY,
  parallelCompress,
  plainGzipHeader,
  readGzipIndex,
} from "../../../lib/compress/mod.ts";
import {
  chunked,
  collect,
  randomBytes,
  sameBytes,
  tempDir,
  textBytes,
} from "../_temp.ts";

const BLOCK = 1 << 16;
const FINAL = new Uint8Array([0x03, 0x00]);

/** Text, a run of zeros two chunks long, random bytes, text: 10.5 blocks. */
function mixed(): Uint8Array {
  const data = new Uint8Array(10 * BLOCK + BLOCK / 2);
  data.set(textBytes(4 * BLOCK, 3), 0);
  // Blocks 4 and 5 stay zero.
  data.set(randomBytes(2 * BLOCK), 6 * BLOCK);
  data.set(textBytes(2 * BLOCK + BLOCK / 2, 4), 8 * BLOCK);
  return data;
}

/** The compressor's output with its index patched in, as a file holds it. */
async function indexed(
  data: Uint8Array,
  options: {
    level?: number;
    expectedSize?: number | undefined;
    inline?: boolean;
  } = {},
): Promise<Uint8Array> {
  const stream = parallelCompress(chunked(data), {
    blockSize: BLOCK,
    level: options.level ?? 5,
    inline: options.inline ?? true,
    jobs: 2,
    index: { expectedSize: () => options.expectedSize },
  });
  const bytes = await collect(stream);
  const patch = stream.amendment.patch;
  assert.ok(patch !== undefined, "an index to write");
  bytes.set(patch.bytes, patch.offset);
  return bytes;
}

function indexOf(file: Uint8Array): GzipIndex | undefined {
  return readGzipIndex(file.subarray(0, extraFieldEnd(file)), file.length);
}

/** Inflates each chunk alone, with no history, and compares it with the input. */
function checkChunks(file: Uint8Array, data: Uint8Array, index: GzipIndex) {
  let at = index.headerLength;
  let out = 0;
  index.lengths.forEach((length, i) => {
    const last = i === index.lengths.length - 1;
    const chunk = file.subarray(at, at + length);
    const input = last ? chunk : new Uint8Array([...chunk, ...FINAL]);
    const inflated = inflateRawSync(input, { finishFlush: constants.Z_FINISH });
    const expected = data.subarray(
      out,
      last ? data.length : out + index.chunkSize,
    );
    assert.equal(sameBytes(inflated, expected), undefined, `chunk ${i}`);
    at += length;
    out += inflated.length;
  });
  assert.equal(out, data.length, "the chunks hold the whole input");
  assert.equal(at + 8, file.length, "then only the trailer");
}

Deno.test("indexedGzipHeader() is a gzip header with one extra subfield that node:zlib skips", () => {
  for (const capacity of [2, 64, MAX_INDEX_CAPACITY]) {
    const header = indexedGzipHeader(capacity, { level: 9, blockSize: BLOCK });
    assert.deepEqual([...header.subarray(0, 4)], [0x1f, 0x8b, 8, 0x04]);
    assert.equal(header[8], 2, "XFL 2: best compression");
    const view = new DataView(header.buffer);
    assert.equal(view.getUint16(10, true), 4 + 8 + 4 * capacity, "XLEN");
    assert.equal(String.fromCharCode(header[12]!, header[13]!), "CI");
    assert.equal(view.getUint16(14, true), 8 + 4 * capacity, "LEN");
    assert.equal(extraFieldEnd(header), header.length);
    assert.ok(header.length <= 12 + 65535, "XLEN fits 16 bits");
    // An empty member with this header: any gzip reader takes it.
    const file = new Uint8Array([...header, ...FINAL, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(gunzipSync(file).length, 0);
    // No chunks described yet: no index.
    assert.equal(readGzipIndex(header, file.length), undefined);
  }
  const plain = plainGzipHeader({ level: 1 });
  assert.deepEqual([...plain], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3]);
  assert.equal(extraFieldEnd(plain), 10);
});

Deno.test("indexBuilder() merges pairs of chunks when they outgrow the capacity", () => {
  const blockSize = 4096;
  for (const capacity of [2, 4, 6, 16]) {
    for (const blocks of [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 40, 100]) {
      for (const short of [false, true]) {
        const count = blocks + (short ? 1 : 0);
        const compressed = Array.from({ length: count }, (_, i) => 100 + i);
        const builder = indexBuilder(capacity, { blockSize, level: 5 });
        compressed.forEach((n, i) =>
          builder.add(n, short && i === count - 1 ? 1000 : blockSize)
        );
        builder.add(FINAL.length, 0);
        const header = indexedGzipHeader(capacity, { level: 5, blockSize });
        const patch = builder.patch();
        header.set(patch.bytes, patch.offset);
        const total = compressed.reduce((a, b) => a + b, 0) + FINAL.length;
        const index = readGzipIndex(header, header.length + total + 8);
        const what = `capacity ${capacity}, ${blocks} blocks${
          short ? " and a short one" : ""
        }`;
        assert.ok(index !== undefined, what);
        // The smallest power of two of blocks per chunk that fits.
        let per = 1;
        while (Math.ceil(count / per) > capacity) per *= 2;
        const lengths: number[] = [];
        for (let i = 0; i < count; i += per) {
          lengths.push(
            compressed.slice(i, i + per).reduce((a, b) => a + b, 0),
          );
        }
        lengths[lengths.length - 1]! += FINAL.length;
        assert.deepEqual(index, {
          headerLength: header.length,
          chunkSize: per * blockSize,
          lengths,
          blockSize,
          level: 5,
        }, what);
      }
    }
  }
});

Deno.test("indexBuilder() writes no index after a short block that is not the last", () => {
  const builder = indexBuilder(8, { blockSize: 4096, level: 5 });
  builder.add(100, 4096);
  builder.add(50, 1000);
  builder.add(100, 4096);
  builder.add(2, 0);
  const header = indexedGzipHeader(8, { level: 5, blockSize: 4096 });
  const patch = builder.patch();
  header.set(patch.bytes, patch.offset);
  assert.equal(readGzipIndex(header, header.length + 252 + 8), undefined);
});

Deno.test("parallelCompress()'s index names chunks that node:zlib inflates one by one", async () => {
  const data = mixed();
  for (const level of [1, 6, 9]) {
    for (const expectedSize of [data.length, undefined, 3 * BLOCK]) {
      const file = await indexed(data, { level, expectedSize });
      assert.equal(sameBytes(gunzipSync(file), data), undefined);
      const index = indexOf(file);
      assert.ok(index !== undefined, `level ${level}, ${expectedSize}`);
      assert.equal(index.blockSize, BLOCK);
      assert.equal(index.level, level);
      assert.equal(index.headerLength, extraFieldEnd(file));
      assert.equal(index.chunkSize % BLOCK, 0);
      checkChunks(file, data, index);
    }
  }
});

Deno.test("the index written through writeFileAtomic's amend is read back from the file", async () => {
  await using dir = await tempDir();
  const data = mixed();
  const stream = parallelCompress(chunked(data), {
    blockSize: BLOCK,
    jobs: 2,
    index: { expectedSize: () => data.length },
  });
  const path = `${dir.path}/data.gz`;
  await writeFileAtomic(path, stream, { amend: stream.amendment });
  const file = await Deno.readFile(path);
  const index = indexOf(file);
  assert.ok(index !== undefined);
  assert.equal(index.chunkSize, BLOCK, "room for one chunk a block");
  assert.equal(index.lengths.length, Math.ceil(data.length / BLOCK));
  checkChunks(file, data, index);
  // An input of one block or less gets no index at all.
  const small = parallelCompress(chunked(textBytes(BLOCK - 1)), {
    blockSize: BLOCK,
    inline: true,
    index: {},
  });
  const bytes = await collect(small);
  assert.equal(small.amendment.patch, undefined);
  assert.equal(extraFieldEnd(bytes), 10);
});

Deno.test("readGzipIndex() ignores a header that does not add up", async () => {
  const file = await indexed(mixed(), { expectedSize: 11 * BLOCK });
  const head = file.subarray(0, extraFieldEnd(file));
  const index = readGzipIndex(head, file.length);
  assert.ok(index !== undefined, "the untouched header is read");
  assert.ok(index.lengths.length >= 3);
  const capacity = (head.length - 24) / 4;
  const mutated = (change: (bytes: Uint8Array, view: DataView) => void) => {
    const copy = head.slice();
    change(copy, new DataView(copy.buffer));
    return copy;
  };
  const cases: [string, Uint8Array, number?][] = [
    ["magic", mutated((b) => b[0] = 0x1e)],
    ["method", mutated((b) => b[2] = 7)],
    ["FLG other than FEXTRA", mutated((b) => b[3] = 0x0c)],
    ["subfield id", mutated((b) => b[13] = 0x4a)],
    ["version", mutated((b) => b[16] = 2)],
    ["chunk log2 below 12", mutated((b) => b[17] = 11)],
    ["chunk log2 above 30", mutated((b) => b[17] = 31)],
    ["block larger than chunk", mutated((b) => b[18] = b[17]! + 1)],
    ["block log2 below 12", mutated((b) => b[18] = 11)],
    ["no chunks", mutated((_, v) => v.setUint32(20, 0, true))],
    [
      "more chunks than room",
      mutated((_, v) => v.setUint32(20, capacity + 1, true)),
    ],
    [
      "LEN past XLEN",
      mutated((_, v) => v.setUint16(14, v.getUint16(10, true) - 3, true)),
    ],
    [
      "a chunk under 2 bytes, the total kept",
      mutated((_, v) => {
        const first = v.getUint32(24, true);
        v.setUint32(24, 1, true);
        v.setUint32(28, v.getUint32(28, true) + first - 1, true);
      }),
    ],
    [
      "a chunk past the sane bound, the file that long",
      mutated((_, v) => v.setUint32(24, index.chunkSize * 1.125 + 65537, true)),
      file.length + index.chunkSize * 1.125 + 65537 - index.lengths[0]!,
    ],
    ["a file one byte longer", head, file.length + 1],
    ["a file one byte shorter", head, file.length - 1],
    ["the header cut short", head.subarray(0, head.length - 1)],
    ["only the fixed part", head.subarray(0, 23)],
  ];
  for (const [what, bytes, size] of cases) {
    assert.equal(readGzipIndex(bytes, size ?? file.length), undefined, what);
  }
});

Deno.test("decompress() inflates an indexed file in parallel, and in one stream when the index is ignored", async () => {
  const data = mixed();
  const file = await indexed(data, { expectedSize: data.length });
  const whole = await collect(
    decompress(chunked(file, 50_000), { size: file.length, jobs: 2 }),
  );
  assert.equal(sameBytes(whole, data), undefined, "in parallel");
  // A header of another version: read as any gzip file, the same bytes.
  const other = file.slice();
  other[16] = 2;
  assert.equal(indexOf(other), undefined);
  const sequential = await collect(
    decompress(chunked(other), { size: other.length, jobs: 2 }),
  );
  assert.equal(sameBytes(sequential, data), undefined, "in one stream");
});

Deno.test("decompress() rejects an index whose chunks lie, or a wrong trailer, in one line", async () => {
  const data = mixed();
  const file = await indexed(data, { expectedSize: data.length });
  const index = indexOf(file);
  assert.ok(index !== undefined && index.lengths.length === 11);
  // The lengths of a text chunk and the zero chunk after it swapped: the
  // total still fits the file, but the chunks start elsewhere. (Chunks
  // inflated in one task could swap lengths unnoticed, and harmlessly.)
  const lying = file.slice();
  const view = new DataView(lying.buffer);
  const [a, b] = [view.getUint32(24 + 12, true), view.getUint32(24 + 16, true)];
  assert.notEqual(a, b, "chunks of different lengths");
  view.setUint32(24 + 12, b, true);
  view.setUint32(24 + 16, a, true);
  assert.ok(indexOf(lying) !== undefined, "the lie is plausible");
  const oneLine = (pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof ArchiveFormatError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), error.message);
    return true;
  };
  await assert.rejects(
    () => collect(decompress(chunked(lying), { size: lying.length, jobs: 2 })),
    oneLine(
      /^Cannot decompress the input: .*chunks? [0-9-]+ of 11 \(bytes \d+ to \d+\)/,
    ),
  );
  // The CRC-32 in the trailer: checked in parallel as in one stream.
  const crc = file.slice();
  crc[crc.length - 8]! ^= 0xff;
  for (const jobs of [2, 1]) {
    await assert.rejects(
      () =>
        collect(
          decompress(chunked(crc), { size: crc.length, jobs, label: "x.gz" }),
        ),
      oneLine(
        /^Cannot decompress x\.gz: the CRC-32 of the data does not match the gzip trailer/,
      ),
    );
  }
});
