/**
 * Blocks that wait on disk for a worker (`spill`): the output is the same,
 * byte for byte, as without, whatever the spill file's limit, and when
 * the disk fills under it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";
import {
  type CompressEnd,
  parallelCompress,
  type ParallelCompressOptions,
} from "../../lib/compress/mod.ts";
import { storedLength } from "../../lib/compress/_deflate_block.ts";
import { openSpillFile, type SpillFile } from "../../lib/fs/mod.ts";
import { disposeChunk } from "../../lib/util/mod.ts";
import {
  check,
  fileDigest,
  joinBytes,
  pythonInflate,
  seededRandom,
  tempDir,
} from "../_helpers.ts";
import { tmpfs } from "../_store.ts";

const MiB = 1 << 20;

/**
 * Blocks of text, zeros and random bytes in an order that puts zero
 * blocks between blocks that wait, and a last partial block.
 */
function blocks(): Uint8Array {
  const kinds = "tztrzzttrtzrttzztrrtztt";
  const random = seededRandom(11);
  const data = new Uint8Array(kinds.length * MiB + 54_321);
  for (let at = 0; at < data.length; at++) {
    const kind = kinds[Math.floor(at / MiB)] ?? "t";
    data[at] = kind === "z"
      ? 0
      : kind === "r"
      ? Math.floor(random() * 256)
      : 97 + ((at * 7 + Math.floor(at / 4096)) % 23);
  }
  return data;
}

/** A spill file that remembers the most bytes it held. */
function watched(spill: SpillFile): SpillFile & { most: number } {
  let most = 0;
  return {
    get limit() {
      return spill.limit;
    },
    get held() {
      return spill.held;
    },
    get free() {
      return spill.free;
    },
    get spilled() {
      return spill.spilled;
    },
    get failure() {
      return spill.failure;
    },
    get most() {
      return most;
    },
    append(bytes) {
      const put = spill.append(bytes);
      most = Math.max(most, spill.held);
      return put;
    },
    take: (into) => spill.take(into),
    [Symbol.dispose]: () => spill[Symbol.dispose](),
  };
}

async function compressed(
  data: Uint8Array,
  options: ParallelCompressOptions,
): Promise<{ bytes: Uint8Array; end: CompressEnd }> {
  const ends: CompressEnd[] = [];
  // The input all at once: reading outruns the workers.
  const bytes = await new Response(
    parallelCompress(ReadableStream.from([data]), {
      ...options,
      onEnd: (end) => ends.push(end),
    }),
  ).bytes();
  assert.equal(ends.length, 1);
  return { bytes, end: ends[0]! };
}

Deno.test("parallelCompress() with a spill file writes the same bytes as without, the blocks that waited in order", async () => {
  await using dir = await tempDir();
  const data = blocks();
  const input = `${dir.path}/input`;
  await Deno.writeFile(input, data);
  for (const format of ["gzip", "zlib"] as const) {
    const plain = await compressed(data, { jobs: 2, format });
    assert.equal(plain.end.spilledBlocks, 0);
    using spill = watched(openSpillFile(dir.path, { limit: 64 * MiB }));
    const spilled = await compressed(data, { jobs: 2, format, spill });
    assert.ok(
      spilled.end.spilledBlocks >= 4,
      `${format}: ${spilled.end.spilledBlocks} blocks waited`,
    );
    // Whole blocks, and perhaps the last, partial one.
    const n = spilled.end.spilledBlocks;
    assert.ok(
      spill.spilled > (n - 1) * MiB && spill.spilled <= n * MiB,
      `${spill.spilled} bytes for ${n} blocks`,
    );
    assert.equal(spill.held, 0, "every block was taken back");
    // The random blocks are stored in this thread (most, or all, of them:
    // a free worker stores one that waits while blocks behind it need one).
    assert.equal(plain.end.storedBlocks, 0);
    assert.ok(
      spilled.end.storedBlocks >= 1 && spilled.end.storedBlocks <= 6,
      `${format}: ${spilled.end.storedBlocks} of 6 random blocks stored here`,
    );
    assert.deepEqual(spilled.bytes, plain.bytes, `${format}: the same bytes`);
    const path = `${dir.path}/out.${format}`;
    await Deno.writeFile(path, spilled.bytes);
    if (format === "gzip") await check("gzip", ["-t", path]);
    assert.equal(
      await pythonInflate(path, format === "gzip" ? 31 : 15),
      await fileDigest(input),
    );
  }
});

Deno.test("parallelCompress() spills no more than the spill file's limit, and reads at the workers' pace past it", async () => {
  await using dir = await tempDir();
  const data = blocks();
  const plain = await compressed(data, { jobs: 2 });
  using spill = watched(openSpillFile(dir.path, { limit: 3 * MiB }));
  const limited = await compressed(data, { jobs: 2, spill });
  assert.ok(limited.end.spilledBlocks > 0);
  assert.ok(spill.most <= 3 * MiB, `held ${spill.most} bytes at most`);
  assert.deepEqual(limited.bytes, plain.bytes);
});

Deno.test("parallelCompress() goes on when the disk under the spill file fills: the block it failed on waits in memory", async () => {
  await using fs = await tmpfs("3m");
  const data = blocks();
  const plain = await compressed(data, { jobs: 2 });
  using spill = openSpillFile(fs.path, { limit: 64 * MiB });
  const full = await compressed(data, { jobs: 2, spill });
  assert.deepEqual(full.bytes, plain.bytes);
  assert.match(
    spill.failure ?? "",
    new RegExp(
      `^Cannot write the spill file in '${fs.path}': no space left on device$`,
    ),
  );
  assert.ok(full.end.spilledBlocks >= 1 && full.end.spilledBlocks <= 3);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(fs.path)), []);
});

Deno.test("parallelCompress() with a spill file stores blocks that will not shrink in this thread, and waits for a slow output instead of spilling them", async () => {
  await using dir = await tempDir();
  const random = seededRandom(5);
  const data = new Uint8Array(12 * MiB).map(() => Math.floor(random() * 256));
  const plain = await compressed(data, { jobs: 2 });
  using spill = watched(openSpillFile(dir.path, { limit: 64 * MiB }));
  const ends: CompressEnd[] = [];
  const stream = parallelCompress(ReadableStream.from([data]), {
    jobs: 2,
    spill,
    onEnd: (end) => ends.push(end),
  });
  // An output slower than the reads: 5 ms a block.
  const bytes = new Uint8Array(plain.bytes.length + MiB);
  let length = 0;
  for await (const part of stream) {
    bytes.set(part, length);
    length += part.length;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.deepEqual(ends.map((end) => [end.storedBlocks, end.spilledBlocks]), [
    [12, 0],
  ]);
  assert.equal(spill.most, 0, "nothing went through the spill file");
  assert.deepEqual(bytes.subarray(0, length), plain.bytes);
  // Stored blocks: the output is the input and 5 bytes a 64 KiB.
  assert.ok(length < data.length * 1.0001, `${length} bytes`);
  const path = `${dir.path}/random.gz`;
  await Deno.writeFile(path, bytes.subarray(0, length));
  await check("gzip", ["-t", path]);
});

Deno.test("parallelCompress() stores blocks in the memory a disposing sink handed back, and writes the same bytes", async () => {
  await using dir = await tempDir();
  const random = seededRandom(9);
  // Random blocks and a last one of half a block: all stored here.
  const data = new Uint8Array(10.5 * MiB).map(() => Math.floor(random() * 256));
  const plain = await compressed(data, { jobs: 2 });
  const full = storedLength(MiB);
  for (const dispose of [false, true]) {
    using spill = openSpillFile(dir.path, { limit: 64 * MiB });
    const ends: CompressEnd[] = [];
    const stream = parallelCompress(ReadableStream.from([data]), {
      jobs: 2,
      spill,
      onEnd: (end) => ends.push(end),
    });
    const copies: Uint8Array[] = [];
    const buffers: number[] = [];
    for await (const chunk of stream) {
      copies.push(chunk.slice());
      buffers.push(chunk.buffer.byteLength);
      if (dispose) disposeChunk(chunk);
    }
    assert.equal(ends[0]!.storedBlocks, 11);
    assert.deepEqual(joinBytes(copies), plain.bytes, `dispose ${dispose}`);
    // The last block, half a block stored, lands in a whole block's memory
    // only when that memory came back from the sink.
    const last = storedLength(MiB / 2);
    assert.equal(buffers.at(-3), dispose ? full : last, `dispose ${dispose}`);
  }
});

/**
 * `total` blocks of text from a source slower than the workers (one every
 * 15 ms, as a pipe the kernel fills), compressed with a spill file and,
 * when given, `deferWorkers` (told how many blocks were delivered): how
 * many chunks came out before the source's end. The output is checked
 * against a compression without a spill file.
 */
async function fromSlowSource(
  total: number,
  spill: SpillFile,
  defer?: (delivered: number) => boolean,
): Promise<
  {
    beforeTheEnd: number;
    end: CompressEnd;
    bytes: Uint8Array;
    input: Uint8Array;
  }
> {
  const block = new Uint8Array(MiB).map((_, at) => 97 + ((at * 7) % 23));
  let delivered = 0;
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, 15));
      if (delivered === total) return controller.close();
      delivered++;
      controller.enqueue(block.slice());
    },
  }, { highWaterMark: 0 });
  const ends: CompressEnd[] = [];
  const chunks: Uint8Array[] = [];
  let beforeTheEnd = 0;
  const stream = parallelCompress(source, {
    jobs: 2,
    spill,
    ...(defer && { deferWorkers: () => defer(delivered) }),
    onEnd: (end) => ends.push(end),
  });
  for await (const chunk of stream) {
    chunks.push(chunk.slice());
    if (delivered < total) beforeTheEnd++;
  }
  const input = joinBytes(Array(total).fill(block));
  const plain = await compressed(input, { jobs: 2 });
  const bytes = joinBytes(chunks);
  assert.deepEqual(bytes, plain.bytes, "the same bytes as without a spill");
  return { beforeTheEnd, end: ends[0]!, bytes, input };
}

Deno.test("parallelCompress() with a spill file writes what the workers deflated while the input is still being read", async () => {
  await using dir = await tempDir();
  using spill = openSpillFile(dir.path, { limit: 64 * MiB });
  const { beforeTheEnd, bytes, input } = await fromSlowSource(24, spill);
  // One chunk a block, and the header: most came out while the source was
  // still being read (before the fix, only the header and the first block
  // did; the rest waited for the input's end).
  assert.ok(beforeTheEnd >= 12, `${beforeTheEnd} chunks before the end`);
  const path = `${dir.path}/out.gz`;
  await Deno.writeFile(path, bytes);
  await Deno.writeFile(`${dir.path}/input`, input);
  assert.equal(
    await pythonInflate(path, 31),
    await fileDigest(`${dir.path}/input`),
  );
});

Deno.test("parallelCompress() with deferWorkers starts the workers only once it says no, or at the end of the input", async () => {
  await using dir = await tempDir();
  using spill = openSpillFile(dir.path, { limit: 64 * MiB });
  // Always deferred: every block but the first (deflated here) waits in
  // the spill file, and nothing but the header and that block comes out
  // before the input ends.
  const always = await fromSlowSource(32, spill, () => true);
  assert.equal(always.end.spilledBlocks, 31);
  assert.ok(always.beforeTheEnd <= 2, `${always.beforeTheEnd} chunks`);
  assert.equal(spill.held, 0, "every block was taken back");
  // Deferred for the first 6 blocks: blocks 2 to 6 wait, and more while
  // the workers start (80-170 ms, 5-11 blocks of this source); they then
  // deflate the rest as it comes, well before the 480 ms the source takes.
  const first = await fromSlowSource(32, spill, (n) => n <= 6);
  assert.ok(
    first.end.spilledBlocks >= 5 && first.end.spilledBlocks < 31,
    `${first.end.spilledBlocks} blocks waited`,
  );
  assert.ok(first.beforeTheEnd > 2, `${first.beforeTheEnd} chunks`);
  const path = `${dir.path}/out.gz`;
  await Deno.writeFile(path, always.bytes);
  await check("gzip", ["-t", path]);
});

Deno.test("parallelCompress() with deferWorkers starts the workers once the spill file is full, or fails", async () => {
  const data = blocks();
  const plain = await compressed(data, { jobs: 2 });
  {
    await using dir = await tempDir();
    using spill = watched(openSpillFile(dir.path, { limit: 3 * MiB }));
    const limited = await compressed(data, {
      jobs: 2,
      spill,
      deferWorkers: () => true,
    });
    assert.ok(spill.most <= 3 * MiB, `held ${spill.most} bytes at most`);
    assert.ok(limited.end.spilledBlocks >= 3);
    assert.deepEqual(limited.bytes, plain.bytes);
  }
  {
    await using fs = await tmpfs("3m");
    using spill = openSpillFile(fs.path, { limit: 64 * MiB });
    const full = await compressed(data, {
      jobs: 2,
      spill,
      deferWorkers: () => true,
    });
    assert.match(spill.failure ?? "", /no space left on device$/);
    assert.deepEqual(full.bytes, plain.bytes);
  }
});

Deno.test("parallelCompress() with workers deferred ends complete at a maxOutput cut, and stops when cancelled", async () => {
  await using dir = await tempDir();
  const data = blocks();
  using spill = openSpillFile(dir.path, { limit: 64 * MiB });
  // Cut while blocks wait for workers that never started.
  const cut = await compressed(data, {
    jobs: 2,
    spill,
    deferWorkers: () => true,
    maxOutput: () => 3 * MiB,
  });
  assert.equal(cut.end.cut, true);
  assert.ok(cut.bytes.length <= 3 * MiB, `${cut.bytes.length} bytes`);
  const inflated = gunzipSync(cut.bytes);
  assert.equal(inflated.length, cut.end.inputBytes);
  assert.ok(inflated.length >= 2 * MiB, `${inflated.length} bytes kept`);
  assert.deepEqual(inflated, Buffer.from(data.subarray(0, inflated.length)));
  // Cancelled with blocks in the spill file: it ends, and no worker or
  // open resource is left (the test's sanitizers).
  const stream = parallelCompress(ReadableStream.from([data]), {
    jobs: 2,
    spill,
    deferWorkers: () => true,
  });
  const reader = stream.getReader();
  assert.equal((await reader.read()).done, false);
  await reader.cancel();
});
