// Direct I/O (O_DIRECT) in the archive's and the spill file's writes: the
// same bytes as through the page cache, the page cache really bypassed
// (util-linux's fincore counts the file's cached pages), a file system
// without O_DIRECT (ramfs) and a full one (a small tmpfs).
import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import {
  FileAccessError,
  openSpillFile,
  writeFileAtomic,
} from "../../lib/fs/mod.ts";
import { costChooser } from "../../lib/fs/_cost_chooser.ts";
import { directFlag } from "../../lib/fs/_direct_io.ts";
import {
  check,
  joinBytes,
  seededRandom,
  spillDescriptors,
  tempDir,
} from "../_helpers.ts";
import { random, tmpfs } from "../_store.ts";

/** Bytes of `path` in the page cache, as fincore counts them. */
async function cachedBytes(path: string): Promise<number> {
  const out = await check("fincore", [
    "--bytes",
    "--noheadings",
    "--output",
    "RES",
    path,
  ]);
  return Number(out.trim());
}

/** Chunks of every size a compressor hands out, 33 MB in all. */
function chunks(): Uint8Array[] {
  const next = seededRandom(11);
  const out: Uint8Array[] = [];
  for (let i = 0; i < 30; i++) {
    // Stored blocks of 1 MiB and their headers, then deflate blocks of any size.
    out.push(random((1 << 20) + 80));
    out.push(random(1 + Math.floor(next() * 70_000)));
  }
  return out;
}

/** A ramfs mount (no O_DIRECT), unmounted on dispose. */
async function ramfs(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await tempDir();
  const path = `${dir.path}/fs`;
  await Deno.mkdir(path);
  await check("mount", ["-t", "ramfs", "-o", "mode=0700", "ramfs", path]);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await check("umount", [path]);
      await dir[Symbol.asyncDispose]();
    },
  };
}

Deno.test("writeFileAtomic() with direct writes the same bytes, the amendment over them, bypassing the page cache", async () => {
  await using dir = await tempDir();
  const parts = chunks();
  const expected = joinBytes(parts);
  const patch = { offset: 3, bytes: new Uint8Array([1, 2, 3, 4, 5]) };
  expected.set(patch.bytes, patch.offset);
  const cached: Record<string, number> = {};
  for (const direct of ["always", "auto", "never"] as const) {
    const path = `${dir.path}/${direct}.gz`;
    await writeFileAtomic(path, ReadableStream.from(parts), {
      direct,
      amend: { patch },
    });
    // Counted before the file is read back (reading fills the cache).
    cached[direct] = await cachedBytes(path);
    const back = await Deno.readFile(path);
    assert.equal(back.length, expected.length, direct);
    assert.ok(back.every((b, i) => b === expected[i]), direct);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  }
  // "never": all of it in the page cache; "always": the unaligned ends and
  // the page the amendment went over; "auto": its first window (8 MiB)
  // past the page cache, its second through it, then the cheaper way.
  assert.ok(cached.never! >= expected.length - 4096, `${cached.never}`);
  assert.ok(cached.always! <= 3 * 4096, `${cached.always}`);
  assert.ok(cached.auto! >= 8 << 20, `${cached.auto}`);
  assert.ok(cached.auto! <= expected.length - (8 << 20), `${cached.auto}`);
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(dir.path), (e) => e.name)).sort(),
    ["always.gz", "auto.gz", "never.gz"],
  );
});

Deno.test("writeFileAtomic() with direct leaves nothing behind when the data fails midway", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/core.gz`;
  const parts = chunks().slice(0, 20);
  const failing = ReadableStream.from((async function* () {
    yield* parts;
    throw new Error("the core's pipe broke");
  })());
  await assert.rejects(
    writeFileAtomic(path, failing, { direct: "always" }),
    /the core's pipe broke/,
  );
  assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path)), []);
});

Deno.test("writeFileAtomic() on a full file system fails in one line, closes the file and gives its room back", async () => {
  await using fs = await tmpfs("8m");
  const free = async () => {
    const { bavail, bsize } = await statfs(fs.path);
    return bavail * bsize;
  };
  const before = await free();
  for (const direct of ["always", "never"] as const) {
    const path = `${fs.path}/core.gz`;
    const error = await writeFileAtomic(path, ReadableStream.from(chunks()), {
      direct,
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof FileAccessError, String(error));
    assert.match(
      error.message,
      /^Cannot write '.*core\.gz': no space left on device$/,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(fs.path)), []);
    // Removed and closed: the room is free again (an open descriptor would
    // hold it after the unlink).
    assert.equal(await free(), before, direct);
  }
});

Deno.test("writeFileAtomic() and the spill file go through the page cache where O_DIRECT is refused (ramfs)", async () => {
  await using fs = await ramfs();
  const parts = chunks().slice(0, 8);
  await writeFileAtomic(`${fs.path}/core.gz`, ReadableStream.from(parts), {
    direct: "always",
  });
  assert.deepEqual(await Deno.readFile(`${fs.path}/core.gz`), joinBytes(parts));
  using spill = openSpillFile(fs.path, { limit: 64 << 20, direct: "always" });
  // One descriptor: the second, past the page cache, could not be opened.
  assert.equal(spillDescriptors().length, 1);
  const data = random(5 << 20);
  assert.equal(spill.append(data), true);
  assert.deepEqual(spill.take(new Uint8Array(data.length)), data);
});

Deno.test("openSpillFile() with direct gives back bytes of any size across takes of any size", async () => {
  await using dir = await tempDir();
  const next = seededRandom(5);
  const data = random(48 << 20);
  using spill = openSpillFile(dir.path, { limit: 40 << 20, direct: "always" });
  let put = 0;
  let taken = 0;
  const back = new Uint8Array(data.length);
  while (taken < data.length) {
    // Whole blocks mostly, some of any size: the bytes after one of those
    // go through the page cache until the file empties.
    const size = next() < 0.7 ? 1 << 20 : 1 + Math.floor(next() * 3 * 65536);
    const piece = data.subarray(put, Math.min(data.length, put + size));
    if (piece.length > 0 && next() < 0.6 && spill.append(piece)) {
      put += piece.length;
    } else if (spill.held > 0) {
      const want = Math.min(spill.held, 1 + Math.floor(next() * 2 << 20));
      spill.take(back.subarray(taken, taken + want));
      taken += want;
    }
  }
  assert.ok(back.every((b, i) => b === data[i]));
  assert.equal(spill.spilled, data.length);
});

Deno.test("openSpillFile() with direct writes aligned blocks past the page cache, the bytes after an unaligned one through it until it empties", async () => {
  await using dir = await tempDir();
  using spill = openSpillFile(dir.path, { limit: 64 << 20, direct: "always" });
  const [plain, direct] = spillDescriptors();
  assert.ok(plain !== undefined && direct !== undefined, "two descriptors");
  const oDirect = directFlag()!;
  assert.equal(plain.flags & oDirect, 0);
  assert.equal(direct.flags & oDirect, oDirect, "O_DIRECT");
  const cached = () => cachedBytes(`/proc/${Deno.pid}/fd/${plain.fd}`);
  const blocks = Array.from({ length: 16 }, () => random(1 << 20));
  const put: Uint8Array[] = [];
  const append = (block: Uint8Array) => {
    assert.equal(spill.append(block), true);
    put.push(block);
  };
  blocks.forEach(append);
  assert.equal(await cached(), 0, "16 whole blocks, none cached");
  append(random(1000));
  append(blocks[0]!);
  append(blocks[1]!);
  const after = await cached();
  assert.ok(after >= 2 << 20, `after an unaligned append: ${after}`);
  // Taken back whole and in order, across the two ways.
  const all = joinBytes(put);
  assert.deepEqual(spill.take(new Uint8Array(all.length)), all);
  // Emptied: appends start over at 0, aligned, past the page cache.
  blocks.slice(0, 8).forEach(append);
  assert.ok((await cached()) <= after, "no more cached");
  const again = joinBytes(blocks.slice(0, 8));
  assert.deepEqual(spill.take(new Uint8Array(again.length)), again);
});

Deno.test("openSpillFile() with direct on a full file system stops appending, says why, and gives back what it took", async () => {
  await using fs = await tmpfs("6m");
  using spill = openSpillFile(fs.path, { limit: 64 << 20, direct: "always" });
  // tmpfs takes O_DIRECT (Linux 6.6 and later): the direct writes are tried.
  assert.equal(spillDescriptors().length, 2);
  const blocks: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    const block = random(1 << 20);
    if (!spill.append(block)) break;
    blocks.push(block);
  }
  assert.ok(blocks.length >= 3 && blocks.length < 10, `${blocks.length}`);
  assert.match(
    spill.failure ?? "",
    /^Cannot write the spill file in '.*': no space left on device$/,
  );
  for (const block of blocks) {
    assert.deepEqual(spill.take(new Uint8Array(block.length)), block);
  }
});

/**
 * The ways `chooser` takes over `steps` records of 10 bytes, each way's cost
 * a byte at each step given by `costs`.
 */
function waysChosen(
  chooser: ReturnType<typeof costChooser>,
  steps: number,
  costs: (step: number) => [number, number],
): string {
  const ways: number[] = [];
  for (let step = 0; step < steps; step++) {
    ways.push(chooser.way);
    chooser.record(costs(step)[chooser.way] * 10, 10);
  }
  return ways.join("");
}

Deno.test("costChooser() keeps the cheaper way, tries the other after each retry, and follows a change", () => {
  const chooser = costChooser({ first: 0, window: 10, retry: 40 });
  // Way 0 costs 3 ms a byte and way 1 costs 1; from step 15, way 1 costs 5.
  assert.equal(
    waysChosen(chooser, 30, (step) => step < 15 ? [3, 1] : [3, 5]),
    // Way 0 measured, way 1 tried and kept (3 times cheaper); way 0 tried
    // again after every 4 windows of way 1. At step 15 way 1 measures 5,
    // past the retry: way 0 is tried, kept (5 > 1.5 x 3), and way 1 tried
    // again every 4 windows.
    "0111110111101111" + "00000100001000",
  );
  assert.deepEqual(chooser.costs, [3, 5]);
});

Deno.test("costChooser() stays with the way it uses unless the other is margin times cheaper", () => {
  const close = costChooser({ first: 1, window: 10, retry: 1000 });
  close.record(10 * 10, 10); // way 1: 10 ms a byte
  assert.equal(close.way, 0);
  close.record(7 * 10, 10); // way 0: 7, not 1.5 times cheaper
  assert.equal(close.way, 1);
  close.record(15 * 10, 10); // way 1 turns dear: 15 > 1.5 x 7
  assert.equal(close.way, 0);
});

Deno.test("costChooser() ends a try after a quarter window when it costs abandon times the kept way", () => {
  const chooser = costChooser({ first: 0, window: 40, retry: 80 });
  // Way 0 costs 1 ms a byte; way 1 costs 3 at first, then 1.8.
  assert.equal(
    waysChosen(chooser, 26, (step) => step < 14 ? [1, 3] : [1, 1.8]),
    // Way 0 over a window of 4 records, way 1 tried and dropped after one
    // (3 >= 2 x 1); after 8 more records of way 0, the same. At 1.8, way 1
    // is tried over its whole window (under 2 x 1), and not kept.
    "0000" + "1" + "00000000" + "1" + "00000000" + "1111",
  );
  assert.deepEqual(chooser.costs, [1, 1.8]);
});
