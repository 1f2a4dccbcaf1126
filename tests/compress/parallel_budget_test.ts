/**
 * `parallelCompress`'s most output (`maxOutput`), its end report (`onEnd`)
 * and its blocks deflated in this thread (`inline`): every cut output is
 * one complete stream that python's zlib and our own decompressor read
 * whole, holding exactly a prefix of the input, within the budget.
 */
import assert from "node:assert/strict";
import { compress, decompress } from "../../lib/compress/mod.ts";
import { extraFieldEnd, readGzipIndex } from "../../lib/compress/mod.ts";
import {
  type CompressEnd,
  parallelCompress,
  type ParallelCompressOptions,
} from "../../lib/compress/mod.ts";
import {
  joinBytes,
  mixed,
  pythonInflate,
  seededRandom,
  tempDir,
  wholeEnd,
} from "../_helpers.ts";

const MiB = 1 << 20;

/** Mixed runs, then random bytes, zeros and random bytes again. */
function testInput(): Uint8Array {
  const random = seededRandom(7);
  const parts = [
    mixed(5 * MiB + 12_345),
    Uint8Array.from({ length: 2 * MiB + 999 }, () => random() * 256),
    new Uint8Array(3 * MiB),
    Uint8Array.from({ length: MiB + 1 }, () => random() * 256),
  ];
  return joinBytes(parts);
}

const INPUT = testInput();

/** A pull stream of 300 kB chunks that records whether it was cancelled. */
function source(data: Uint8Array): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
} {
  let at = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= data.length) {
        controller.close();
        return;
      }
      controller.enqueue(data.slice(at, at + 300_000));
      at += 300_000;
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

interface Run {
  bytes: Uint8Array;
  end: CompressEnd;
  patched: boolean;
  cancelled: boolean;
}

/** Compresses INPUT, applies the index patch, checks onEnd came once. */
async function run(
  options: ParallelCompressOptions,
  withIndex: boolean,
  compressor: typeof parallelCompress = parallelCompress,
): Promise<Run> {
  const input = source(INPUT);
  const ends: CompressEnd[] = [];
  const stream = compressor(input.stream, {
    ...options,
    ...(withIndex ? { index: { expectedSize: () => INPUT.length } } : {}),
    onEnd: (end) => ends.push(end),
  });
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  const patch = stream.amendment.patch;
  assert.equal(ends.length, 1, "onEnd is called exactly once");
  if (patch !== undefined) bytes.set(patch.bytes, patch.offset);
  return {
    bytes,
    end: ends[0]!,
    patched: patch !== undefined,
    cancelled: input.cancelled(),
  };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Checks one output: within budget, one stream, exactly the prefix. */
async function verify(
  path: string,
  result: Run,
  format: "gzip" | "zlib",
  budget: number | undefined,
  what: string,
): Promise<void> {
  const { bytes, end } = result;
  if (budget !== undefined) {
    assert.ok(
      bytes.length <= budget,
      `${what}: ${bytes.length} bytes, expected at most ${budget}`,
    );
  }
  assert.ok(end.inputBytes >= 0 && end.inputBytes <= INPUT.length, what);
  assert.equal(end.cut, end.inputBytes < INPUT.length, `${what}: cut`);
  const prefix = INPUT.subarray(0, end.inputBytes);
  await Deno.writeFile(path, bytes);
  assert.equal(
    await pythonInflate(path, format === "gzip" ? 31 : 15),
    `${prefix.length} ${await sha256(prefix)}`,
    `${what}: python reads one complete stream of the prefix`,
  );
  // With no block at all the index is empty (count 0): read as plain gzip.
  if (format === "gzip" && result.patched && end.inputBytes > 0) {
    const head = bytes.subarray(0, extraFieldEnd(bytes));
    const index = readGzipIndex(head, bytes.length);
    assert.ok(index, `${what}: the index describes the emitted chunks`);
    assert.equal(
      index.lengths.reduce((a, b) => a + b, 0) + index.headerLength + 8,
      bytes.length,
    );
  }
  // Our own decompressor, through the index (size given) when there is one.
  using file = await Deno.open(path);
  const ours = new Uint8Array(
    await new Response(
      decompress(file.readable, { size: bytes.length, jobs: 2 }),
    ).arrayBuffer(),
  );
  assert.equal(ours.length, prefix.length, `${what}: our length`);
  assert.ok(
    ours.every((b, i) => b === prefix[i]),
    `${what}: our bytes are the prefix`,
  );
}

for (const format of ["gzip", "zlib"] as const) {
  for (const withIndex of [false, true]) {
    Deno.test(
      `parallelCompress() maxOutput cuts ${format}${
        withIndex ? " with an index" : ""
      } into one complete stream within the budget`,
      async () => {
        await using dir = await tempDir();
        const base: ParallelCompressOptions = { format, jobs: 2, level: 5 };
        const full = await run(base, withIndex);
        assert.equal(full.end.inputBytes, INPUT.length);
        assert.equal(full.end.cut, false);
        assert.equal(full.patched, format === "gzip" && withIndex);
        await verify(`${dir.path}/full`, full, format, undefined, "no budget");
        const minimum = format === "gzip" ? 10 + 2 + 8 : 2 + 2 + 4;
        const budgets = [
          minimum,
          minimum + 100,
          40_000,
          Math.floor(full.bytes.length / 3),
          Math.floor(full.bytes.length / 2),
          full.bytes.length - 1,
          full.bytes.length,
          full.bytes.length + 100_000,
        ];
        let cuts = 0;
        let cancels = 0;
        for (const budget of budgets) {
          const what = `${format}, index ${withIndex}, maxOutput ${budget}`;
          const asked: number[] = [];
          const result = await run(
            { ...base, maxOutput: (needed) => (asked.push(needed), budget) },
            withIndex,
          );
          assert.ok(asked.length > 0, `${what}: maxOutput is asked`);
          // `needed` is what the output would then take, all of it; past
          // the last block that fits, a prefix of the next may fill the rest.
          const accepted = asked.filter((needed) => needed <= budget);
          assert.ok(
            result.bytes.length >=
              (accepted.length === 0 ? minimum : Math.max(...accepted)),
            `${what}: needed`,
          );
          await verify(`${dir.path}/${budget}`, result, format, budget, what);
          if (budget >= full.bytes.length) {
            assert.deepEqual(result.bytes, full.bytes, `${what}: not cut`);
          } else {
            assert.equal(result.end.cut, true, `${what}: cut`);
            // Input left unread (beyond the blocks read ahead: four in the
            // workers, and any zeros) is cancelled.
            if (result.end.inputBytes + 8 * MiB < INPUT.length) {
              assert.equal(result.cancelled, true, `${what}: input cancelled`);
              cancels++;
            }
            cuts++;
          }
          if (budget === minimum) {
            assert.equal(result.end.inputBytes, 0, `${what}: nothing fits`);
            assert.equal(result.bytes.length, minimum, what);
          }
          if (budget === full.bytes.length - 1) {
            // Only the last block (and what follows) does not fit.
            assert.ok(result.end.inputBytes >= INPUT.length - MiB - 1, what);
          }
          // The same budget in this thread: the same bytes.
          const inline = await run(
            { ...base, inline: true, maxOutput: () => budget },
            withIndex,
          );
          assert.deepEqual(inline.bytes, result.bytes, `${what}: inline`);
          assert.deepEqual(inline.end, result.end, `${what}: inline onEnd`);
          // In this thread one block is read ahead: the rest is cancelled.
          if (inline.end.inputBytes + 2 * MiB < INPUT.length) {
            assert.equal(inline.cancelled, true, `${what}: inline cancelled`);
          }
        }
        assert.equal(cuts, 6);
        assert.ok(cancels >= 3, `${cancels} cancelled inputs, expected 3`);
      },
    );
  }
}

Deno.test("parallelCompress() maxOutput asked per block, maybe async: a budget that shrinks cuts at the next block", async () => {
  await using dir = await tempDir();
  let budget = 10_000_000;
  let asked = 0;
  const result = await run({
    jobs: 2,
    maxOutput: async () => {
      // A few blocks in, the store has room for 2 MB only (it takes a
      // moment to tell: the answer may be a promise).
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (++asked === 4) budget = 2_000_000;
      return budget;
    },
  }, true);
  assert.ok(result.bytes.length <= 2_000_000);
  assert.equal(result.end.cut, true);
  assert.ok(result.end.inputBytes > 0);
  assert.ok(result.end.inputBytes < INPUT.length - 4 * MiB);
  await verify(`${dir.path}/shrunk`, result, "gzip", 2_000_000, "shrinking");
});

Deno.test("parallelCompress() inline writes the same bytes as the workers, whatever jobs says", async () => {
  for (const format of ["gzip", "zlib"] as const) {
    for (const level of [1, 5, 9]) {
      const workers = await run({ format, level, jobs: 2 }, true);
      const inline = await run({ format, level, inline: true }, true);
      const one = await run({ format, level, inline: true, jobs: 1 }, true);
      assert.deepEqual(inline.bytes, workers.bytes, `${format} ${level}`);
      assert.deepEqual(one.bytes, workers.bytes, `${format} ${level} jobs 1`);
      assert.deepEqual(inline.end, wholeEnd(INPUT.length));
    }
  }
});

Deno.test("compress() passes maxOutput and onEnd through, and cuts with jobs 1 in this thread", async () => {
  await using dir = await tempDir();
  const workers = await run({ jobs: 2, maxOutput: () => 300_000 }, true);
  for (const jobs of [1, 2]) {
    const result = await run(
      { jobs, maxOutput: () => 300_000 },
      true,
      (input, options) => compress(input, options ?? {}),
    );
    assert.deepEqual(result.bytes, workers.bytes, `jobs ${jobs}`);
    assert.equal(result.end.cut, true);
    await verify(`${dir.path}/${jobs}`, result, "gzip", 300_000, "compress()");
  }
  // jobs 1 without maxOutput: CompressionStream, and onEnd still comes.
  const stream = await run(
    { jobs: 1 },
    false,
    (input, options) => compress(input, options ?? {}),
  );
  assert.deepEqual(stream.end, wholeEnd(INPUT.length));
  await verify(`${dir.path}/stream`, stream, "gzip", undefined, "jobs 1");
});
