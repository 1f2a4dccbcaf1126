import assert from "node:assert/strict";
import { decompress } from "../../lib/compress/mod.ts";
import { extraFieldEnd, readGzipIndex } from "../../lib/compress/mod.ts";
import { disposeChunk, isSharedZeros } from "../../lib/util/mod.ts";
import {
  crashCore,
  fileDigest,
  listAll,
  liveCore,
  mixed,
  runMain,
  tempDir,
} from "../_helpers.ts";

/** Decompresses a file through `decompress()`, as the CLI does. */
async function inflateFile(
  path: string,
  jobs: number,
): Promise<
  { bytes: Uint8Array; sharedZeroChunks: number; otherChunks: number }
> {
  using file = await Deno.open(path);
  const { size } = await file.stat();
  const chunks: Uint8Array[] = [];
  let sharedZeroChunks = 0;
  // Chunks neither shared zeros nor given away to be freed once used.
  let otherChunks = 0;
  for await (const chunk of decompress(file.readable, { size, jobs })) {
    chunks.push(chunk.slice());
    if (isSharedZeros(chunk)) sharedZeroChunks++;
    else if (!disposeChunk(chunk)) otherChunks++;
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return { bytes, sharedZeroChunks, otherChunks };
}

async function digestOf(bytes: Uint8Array, dir: string): Promise<string> {
  const path = `${dir}/digest-${crypto.randomUUID()}`;
  await Deno.writeFile(path, bytes);
  try {
    return await fileDigest(path);
  } finally {
    await Deno.remove(path);
  }
}

/** Chunks of the file's index whose input is all zeros (but the last). */
function zeroChunks(input: Uint8Array, chunkSize: number): number {
  let count = 0;
  for (let at = 0; at + chunkSize < input.length; at += chunkSize) {
    if (input.subarray(at, at + chunkSize).every((b) => b === 0)) count++;
  }
  return count;
}

Deno.test("indexed gzip files of real cores and mixed data inflate in parallel to the same bytes", async () => {
  await using dir = await tempDir();
  const inputs = [await crashCore(dir.path), await liveCore(dir.path)];
  // Past the first 16 MiB inflated in the main thread: workers inflate too.
  await Deno.writeFile(`${dir.path}/mixed`, mixed(37_654_321));
  inputs.push(`${dir.path}/mixed`);
  for (const input of inputs) {
    const gz = `${input}.gz`;
    const compressed = await runMain(["-c", "-f", input, "-o", gz]);
    assert.equal(compressed.code, 0, compressed.stderr);
    const head = await Deno.readFile(gz);
    const index = readGzipIndex(
      head.subarray(0, extraFieldEnd(head)),
      head.length,
    );
    assert.ok(index !== undefined, `${gz} has an index`);
    const raw = await Deno.readFile(input);
    const digest = await fileDigest(input);
    // The CLI releases each chunk once written: to a file and to stdout.
    const out = `${input}.out`;
    const toFile = await runMain(["-d", "-f", gz, "-o", out]);
    assert.equal(toFile.code, 0, toFile.stderr);
    assert.equal(await fileDigest(out), digest, `${gz} -o FILE`);
    const toStdout = await runMain(["-d", "-f", gz, "-o", "-"]);
    assert.equal(toStdout.code, 0, toStdout.stderr);
    assert.equal(
      await digestOf(toStdout.stdout, dir.path),
      digest,
      `${gz} -o -`,
    );
    for (const jobs of [1, 2, 3]) {
      const { bytes, sharedZeroChunks, otherChunks } = await inflateFile(
        gz,
        jobs,
      );
      assert.equal(await digestOf(bytes, dir.path), digest, `${gz} -j ${jobs}`);
      // Chunks of zeros are recognised, not inflated (in parallel only).
      assert.equal(
        sharedZeroChunks,
        jobs === 1 ? 0 : zeroChunks(raw, index.chunkSize),
        `${gz} -j ${jobs}: chunks of zeros`,
      );
      // In parallel, every inflated chunk is the consumer's to free.
      if (jobs > 1) assert.equal(otherChunks, 0, `${gz} -j ${jobs}`);
    }
  }
});

Deno.test("cli: a damaged indexed file fails in one line, and leaves no output", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/mixed`;
  // No zero runs: every chunk is inflated, the first 16 MiB (chunks 1-16)
  // in the main thread while the workers start, the rest by the workers.
  await Deno.writeFile(input, mixed(28_345_678, { zeros: false }));
  const gz = `${input}.gz`;
  assert.equal((await runMain(["-c", "-f", input, "-o", gz])).code, 0);
  const good = await Deno.readFile(gz);
  const headerLength = extraFieldEnd(good);
  const index = readGzipIndex(good.subarray(0, headerLength), good.length)!;
  const view = (bytes: Uint8Array) => new DataView(bytes.buffer);
  /** Flips byte 1000 of chunk `n` (counted from 1). */
  const flipInChunk = (n: number) => (bytes: Uint8Array) => {
    const at = headerLength +
      index.lengths.slice(0, n - 1).reduce((a, b) => a + b, 0) + 1000;
    bytes[at]! ^= 0xff;
    return bytes;
  };
  const damaged: [string, (bytes: Uint8Array) => Uint8Array, RegExp][] = [
    [
      "a byte of chunk 6 flipped (inflated in the main thread)",
      flipInChunk(6),
      /corrupt deflate data in chunks 5-8 of 28 \(bytes \d+ to \d+\): .*expected a valid gzip stream|CRC-32 of the data does not match/,
    ],
    [
      "a byte of chunk 22 flipped (inflated by a worker)",
      flipInChunk(22),
      /corrupt deflate data in chunks 21-24 of 28 \(bytes \d+ to \d+\): .*expected a valid gzip stream|CRC-32 of the data does not match/,
    ],
    [
      "a chunk boundary moved by one byte",
      (bytes) => {
        // Chunk 4 ends a task; chunk 5 starts the next: one byte moves.
        view(bytes).setUint32(24 + 4 * 3, index.lengths[3]! - 1, true);
        view(bytes).setUint32(24 + 4 * 4, index.lengths[4]! + 1, true);
        return bytes;
      },
      /corrupt deflate data in chunks 1-4 of 28 \(bytes \d+ to \d+\)/,
    ],
    [
      "the CRC-32 in the trailer",
      (bytes) => {
        bytes[bytes.length - 8]! ^= 1;
        return bytes;
      },
      /the CRC-32 of the data does not match the gzip trailer/,
    ],
    [
      "the length in the trailer",
      (bytes) => {
        bytes[bytes.length - 4]! ^= 1;
        return bytes;
      },
      /the length of the data does not match the gzip trailer/,
    ],
    [
      "cut short (the index no longer fits: read in one stream)",
      (bytes) => bytes.subarray(0, bytes.length - 100_000),
      /the gzip stream is truncated: the input ends at byte/,
    ],
  ];
  for (const [what, spoil, message] of damaged) {
    const bad = `${dir.path}/bad.gz`;
    await Deno.writeFile(bad, spoil(good.slice()));
    for (const jobs of ["2", "3"]) {
      const result = await runMain([
        "-d",
        "-j",
        jobs,
        "-f",
        bad,
        "-o",
        `${dir.path}/out`,
      ]);
      assert.equal(result.code, 1, `${what}: exit code`);
      assert.match(result.stderr, message, what);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, "no stack trace");
      assert.deepEqual(
        await listAll(dir.path),
        ["bad.gz", "mixed", "mixed.gz"],
        `${what}: nothing half-written`,
      );
    }
  }
});
