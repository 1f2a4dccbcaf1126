import assert from "node:assert/strict";
import { writeFileAtomic } from "../../lib/fs/mod.ts";
import {
  extraFieldEnd,
  type GzipIndex,
  indexBuilder,
  readGzipIndex,
} from "../../lib/compress/mod.ts";
import { parallelCompress } from "../../lib/compress/mod.ts";
import {
  check,
  crashCore,
  fileDigest,
  mixed,
  pythonInflate,
  runTool,
  tempDir,
} from "../_helpers.ts";

/** Compresses `input` in parallel into `output`, with its index written. */
async function compressIndexed(
  input: string,
  output: string,
  options: { expectedSize?: number; level?: number } = {},
): Promise<void> {
  using source = await Deno.open(input);
  const compressed = parallelCompress(source.readable, {
    jobs: 2,
    ...(options.level === undefined ? {} : { level: options.level }),
    index: { expectedSize: () => options.expectedSize },
  });
  await writeFileAtomic(output, compressed, { amend: compressed.amendment });
}

async function indexOf(path: string): Promise<GzipIndex | undefined> {
  const bytes = await Deno.readFile(path);
  return readGzipIndex(
    bytes.subarray(0, extraFieldEnd(bytes)),
    bytes.length,
  );
}

/**
 * Python's zlib inflates each chunk the index names on its own, with no
 * history, and compares it with the input: the index says where
 * independent pieces start, and how long they are.
 */
async function pythonChecksChunks(
  gz: string,
  input: string,
  index: GzipIndex,
): Promise<void> {
  await check("python3", [
    "-c",
    `import zlib,sys,json
gz=open(sys.argv[1],'rb').read(); raw=open(sys.argv[2],'rb').read()
ix=json.loads(sys.argv[3]); at=ix['headerLength']; out=0
for i,n in enumerate(ix['lengths']):
    d=zlib.decompressobj(-15)
    x=d.decompress(gz[at:at+n])
    last=i==len(ix['lengths'])-1
    assert d.eof==last, f'chunk {i}: stream end {d.eof}'
    assert last or len(x)==ix['chunkSize'], f'chunk {i}: {len(x)} bytes'
    assert x==raw[out:out+len(x)], f'chunk {i}: other bytes'
    at+=n; out+=len(x)
assert out==len(raw) and at+8==len(gz), (out, at)`,
    gz,
    input,
    JSON.stringify(index),
  ]);
}

Deno.test("the index of a real core and of mixed data names chunks that python inflates one by one", async () => {
  await using dir = await tempDir();
  const inputs = [await crashCore(dir.path)];
  await Deno.writeFile(`${dir.path}/mixed`, mixed(13_000_000));
  inputs.push(`${dir.path}/mixed`);
  for (const input of inputs) {
    const size = (await Deno.stat(input)).size;
    for (const level of [1, 5, 9]) {
      const gz = `${input}.${level}.gz`;
      await compressIndexed(input, gz, { expectedSize: size, level });
      const index = await indexOf(gz);
      assert.ok(index !== undefined, `${gz}: an index that fits the file`);
      assert.equal(index.chunkSize, 1 << 20);
      assert.equal(index.lengths.length, Math.ceil(size / (1 << 20)));
      assert.equal(index.level, level);
      await pythonChecksChunks(gz, input, index);
      // The extra field is a standard one: every reader skips it.
      await check("gzip", ["-t", gz]);
      assert.equal(await pythonInflate(gz, 31), await fileDigest(input));
      const sevenZip = await runTool("7z", ["t", gz]);
      assert.equal(sevenZip.code, 0, sevenZip.stderr);
    }
  }
});

Deno.test("an index that outgrows its room merges chunks, and stays right", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/mixed`;
  await Deno.writeFile(input, mixed(21_000_000));
  const size = (await Deno.stat(input)).size;
  // Room for 2 chunks, reserved for 1.5 MiB: 21 MB takes 16 MiB chunks.
  const small = `${input}.small.gz`;
  await compressIndexed(input, small, { expectedSize: 1_500_000 });
  const merged = await indexOf(small);
  assert.ok(merged !== undefined);
  assert.equal(merged.chunkSize, 16 << 20);
  assert.equal(merged.lengths.length, 2);
  await pythonChecksChunks(small, input, merged);
  // Size unknown (a pipe): room for 1024 chunks, plenty here.
  const unknown = `${input}.unknown.gz`;
  await compressIndexed(input, unknown);
  const plenty = await indexOf(unknown);
  assert.ok(plenty !== undefined);
  assert.equal(plenty.lengths.length, Math.ceil(size / (1 << 20)));
  assert.equal(plenty.headerLength, 12 + 4 + 8 + 4 * 1024);
  await pythonChecksChunks(unknown, input, plenty);
});

Deno.test("inputs of one block or less get a plain header, and no index", async () => {
  await using dir = await tempDir();
  for (const size of [0, 1, 1000, (1 << 20) - 1]) {
    const input = `${dir.path}/in${size}`;
    await Deno.writeFile(input, mixed(size));
    await compressIndexed(input, `${input}.gz`, { expectedSize: size });
    const bytes = await Deno.readFile(`${input}.gz`);
    assert.equal(bytes[3], 0, `${size} bytes: FLG has no FEXTRA`);
    assert.equal(await indexOf(`${input}.gz`), undefined);
    assert.equal(
      await pythonInflate(`${input}.gz`, 31),
      await fileDigest(input),
    );
  }
});

Deno.test("readGzipIndex() ignores an index that does not add up to the file", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/mixed`;
  await Deno.writeFile(input, mixed(5_000_000));
  const gz = `${input}.gz`;
  await compressIndexed(input, gz, { expectedSize: 5_000_000 });
  const bytes = await Deno.readFile(gz);
  const head = bytes.subarray(0, extraFieldEnd(bytes));
  assert.ok(readGzipIndex(head, bytes.length) !== undefined);
  // A file one byte longer or shorter (appended member, truncation).
  assert.equal(readGzipIndex(head, bytes.length + 1), undefined);
  assert.equal(readGzipIndex(head, bytes.length - 1), undefined);
  // Each field of the payload, spoiled in turn.
  const spoiled = (at: number, value: number) => {
    const copy = head.slice();
    copy[at] = value;
    return readGzipIndex(copy, bytes.length);
  };
  assert.equal(spoiled(12, 0x41), undefined, "another subfield ID");
  assert.equal(spoiled(16, 2), undefined, "another version");
  assert.equal(spoiled(17, 40), undefined, "chunks of 1 TiB");
  assert.equal(spoiled(18, 21), undefined, "blocks larger than chunks");
  assert.equal(spoiled(20, 0), undefined, "no chunks");
  // A header cut before its index ends.
  assert.equal(readGzipIndex(head.subarray(0, 30), bytes.length), undefined);
});

Deno.test("indexBuilder() gives the final block to the last chunk and refuses blocks after a short one", () => {
  const block = 1 << 20;
  const exact = indexBuilder(4, { blockSize: block, level: 5 });
  for (const n of [100, 200]) exact.add(n, block);
  exact.add(2, 0); // the final block
  const view = (patch: { bytes: Uint8Array }) =>
    new DataView(patch.bytes.buffer);
  const a = view(exact.patch());
  assert.equal(a.getUint32(4, true), 2);
  assert.deepEqual([a.getUint32(8, true), a.getUint32(12, true)], [100, 202]);
  const broken = indexBuilder(4, { blockSize: block, level: 5 });
  broken.add(100, block - 1); // a short block ends the input ...
  broken.add(100, block); // ... so a full one after it is not ours
  broken.add(2, 0);
  assert.equal(view(broken.patch()).getUint32(4, true), 0);
});
