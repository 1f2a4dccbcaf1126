import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import { FileAccessError, openSpillFile } from "../../../lib/fs/mod.ts";
import {
  randomBytes,
  sameBytes,
  seeded,
  spillDescriptors,
  tempDir,
} from "../_temp.ts";

Deno.test("openSpillFile() gives bytes back first in, first out, across appends and takes of any size", async () => {
  await using dir = await tempDir();
  const random = seeded(7);
  const data = randomBytes(6_000_000);
  using spill = openSpillFile(dir.path, { limit: 2_000_000 });
  let put = 0;
  let taken = 0;
  let refused = 0;
  const back = new Uint8Array(data.length);
  while (taken < data.length) {
    // Put a piece while it fits, else take one: the file fills and empties
    // many times, and its start moves back to 0 each time it empties.
    const size = 1 + Math.floor(random() * 300_000);
    const piece = data.subarray(put, Math.min(data.length, put + size));
    if (piece.length > 0 && spill.append(piece)) {
      put += piece.length;
    } else {
      if (piece.length > 0) refused++;
      const want = Math.min(spill.held, 1 + Math.floor(random() * 400_000));
      spill.take(back.subarray(taken, taken + want));
      taken += want;
    }
    assert.equal(spill.held, put - taken);
  }
  assert.equal(sameBytes(back, data), undefined);
  assert.equal(spill.spilled, data.length);
  assert.ok(refused > 0, "the limit was reached");
  assert.equal(spill.free, 2_000_000, "emptied: all of the limit is free");
});

Deno.test("openSpillFile() refuses what passes its limit, and says what it holds when asked for more", async () => {
  await using dir = await tempDir();
  using spill = openSpillFile(dir.path, { limit: 100 });
  assert.equal(spill.append(new Uint8Array(60).fill(1)), true);
  assert.equal(spill.append(new Uint8Array(41)), false);
  assert.equal(spill.free, 40);
  assert.equal(spill.append(new Uint8Array(40).fill(2)), true);
  assert.equal(spill.free, 0);
  spill.take(new Uint8Array(30));
  // Not emptied: what was taken is not free again yet.
  assert.equal(spill.free, 0);
  assert.equal(spill.held, 70);
  assert.throws(
    () => spill.take(new Uint8Array(71)),
    (error: unknown) =>
      error instanceof FileAccessError &&
      /Cannot take 71 bytes from the spill file in '.*': expected at most the 70 bytes it holds/
        .test(error.message),
  );
  const rest = spill.take(new Uint8Array(70));
  assert.deepEqual(rest, new Uint8Array(70).map((_, i) => i < 30 ? 1 : 2));
  assert.equal(spill.failure, undefined);
});

Deno.test("openSpillFile() leaves no name in the directory: an unlinked file of mode 0600, closed when disposed", async () => {
  await using dir = await tempDir();
  {
    using spill = openSpillFile(dir.path, { limit: 1 << 20 });
    spill.append(new Uint8Array(5000));
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path)), []);
    const open = spillDescriptors();
    assert.equal(open.length, 1, JSON.stringify(open));
    assert.match(
      open[0]!.target,
      new RegExp(`^${dir.path}/\\.gzcoredump-spill-[0-9a-f]{8} \\(deleted\\)$`),
    );
    // The descriptor still reaches the file: its mode and size.
    const info = await Deno.stat(`/proc/self/fd/${open[0]!.fd}`);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.equal(info.size, 5000);
  }
  assert.deepEqual(spillDescriptors(), [], "closed when disposed");
});

Deno.test("openSpillFile() says where and why it cannot create its file", async () => {
  await using dir = await tempDir();
  assert.throws(
    () => openSpillFile(`${dir.path}/missing`, { limit: 10 }),
    (error: unknown) =>
      error instanceof FileAccessError &&
      error.message ===
        `Cannot create a spill file in '${dir.path}/missing': no such file or directory`,
  );
});

Deno.test("openSpillFile() refuses an append that would leave its file system under minFree", async () => {
  await using dir = await tempDir();
  const { bavail, bsize } = await statfs(dir.path);
  const free = bavail * bsize;
  // More than this file system has: nothing fits, and that is no failure.
  using none = openSpillFile(dir.path, { limit: 1 << 20, minFree: free * 2 });
  assert.equal(none.append(new Uint8Array(10)), false);
  assert.equal(none.failure, undefined);
  assert.equal(none.held, 0);
  // Far under it: appends go in.
  using some = openSpillFile(dir.path, { limit: 1 << 20, minFree: 1 << 20 });
  assert.equal(some.append(new Uint8Array(10)), true);
});

Deno.test("openSpillFile() truncates a file that emptied after growing past 64 MiB, and only then", async () => {
  await using dir = await tempDir();
  using spill = openSpillFile(dir.path, { limit: 128 << 20 });
  const size = async () =>
    (await Deno.stat(`/proc/self/fd/${spillDescriptors()[0]!.fd}`)).size;
  const block = new Uint8Array(1 << 20).fill(7);
  spill.append(block);
  spill.take(new Uint8Array(1 << 20));
  assert.equal(await size(), 1 << 20, "a small file keeps its pages");
  for (let i = 0; i < 64; i++) spill.append(block);
  assert.equal(await size(), 64 << 20);
  for (let i = 0; i < 64; i++) spill.take(new Uint8Array(1 << 20));
  assert.equal(await size(), 0, "emptied at 64 MiB: truncated");
  assert.equal(spill.free, 128 << 20);
});
