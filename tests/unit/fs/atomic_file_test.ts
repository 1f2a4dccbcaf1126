import assert from "node:assert/strict";
import {
  FileAccessError,
  FileExistsError,
  fsReason,
  readFileAt,
  SHORT_WRITE_PIECE,
  ShortReadError,
  WRITE_PIECE,
  writeFileAtomic,
} from "../../../lib/fs/mod.ts";
import { disposableChunk, zeros } from "../../../lib/util/mod.ts";
import {
  chunked,
  randomBytes,
  sameBytes,
  tempDir,
  textBytes,
} from "../_temp.ts";

async function names(directory: string): Promise<string[]> {
  const all = await Array.fromAsync(Deno.readDir(directory));
  return all.map((e) => e.name).sort();
}

Deno.test("writeFileAtomic() writes every byte under the final name only, with its mode", async () => {
  await using dir = await tempDir();
  const data = randomBytes(300_000);
  const path = `${dir.path}/out.bin`;
  assert.equal(await writeFileAtomic(path, chunked(data, 65_000)), path);
  assert.equal(sameBytes(await Deno.readFile(path), data), undefined);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual(await names(dir.path), ["out.bin"], "no temporary left");
  const other = `${dir.path}/other`;
  await writeFileAtomic(other, chunked(data), { mode: 0o640, sync: false });
  assert.equal((await Deno.stat(other)).mode! & 0o777, 0o640);
});

Deno.test("writeFileAtomic() never replaces a file unless asked, and numbers names with unique", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/Core_x.gz`;
  await Deno.writeTextFile(path, "original");
  await assert.rejects(
    () => writeFileAtomic(path, chunked(textBytes(100))),
    (error: unknown) =>
      error instanceof FileExistsError && error.path === path &&
      /a file of that name exists/.test(error.message),
  );
  assert.equal(await Deno.readTextFile(path), "original");
  assert.deepEqual(await names(dir.path), ["Core_x.gz"]);
  // unique: the next free number before the extension.
  const second = await writeFileAtomic(path, chunked(textBytes(10)), {
    unique: true,
  });
  assert.equal(second, `${dir.path}/Core_x-2.gz`);
  const third = await writeFileAtomic(path, chunked(textBytes(10)), {
    unique: true,
  });
  assert.equal(third, `${dir.path}/Core_x-3.gz`);
  // replace: atomically, by rename.
  await writeFileAtomic(path, chunked(new TextEncoder().encode("new")), {
    replace: true,
  });
  assert.equal(await Deno.readTextFile(path), "new");
  assert.deepEqual(await names(dir.path), [
    "Core_x-2.gz",
    "Core_x-3.gz",
    "Core_x.gz",
  ]);
});

Deno.test("writeFileAtomic() leaves nothing behind when the data fails or the write is aborted", async () => {
  await using dir = await tempDir();
  let sent = 0;
  const failing = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < 3) controller.enqueue(randomBytes(10_000));
      else controller.error(new Error("the source broke"));
    },
  });
  await assert.rejects(
    () => writeFileAtomic(`${dir.path}/a`, failing),
    /the source broke/,
  );
  const controller = new AbortController();
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new Uint8Array(1000));
      if (++sent === 10) controller.abort(new Error("stopped"));
    },
  });
  await assert.rejects(
    () =>
      writeFileAtomic(`${dir.path}/b`, endless, { signal: controller.signal }),
    /stopped/,
  );
  assert.deepEqual(await names(dir.path), []);
  // A directory that does not exist: one line naming it.
  await assert.rejects(
    () => writeFileAtomic(`${dir.path}/missing/c`, chunked(textBytes(1))),
    (error: unknown) =>
      error instanceof FileAccessError &&
      /^Cannot create a file in '.*missing': no such file or directory$/.test(
        error.message,
      ),
  );
});

Deno.test("writeFileAtomic() with sparse leaves holes for zeros and the same bytes", async () => {
  await using dir = await tempDir();
  const data = new Uint8Array(4 << 20);
  data.set(textBytes(5000), 0);
  data.set(textBytes(100), 2 << 20);
  const parts = [
    data.subarray(0, 1 << 20),
    zeros(1 << 20), // Shared zeros: a hole without reading them.
    data.subarray(2 << 20),
  ];
  const path = `${dir.path}/sparse`;
  await writeFileAtomic(path, ReadableStream.from(parts), { sparse: true });
  const back = await Deno.readFile(path);
  assert.equal(sameBytes(back, data), undefined);
  const info = await Deno.stat(path);
  assert.equal(info.size, data.length, "trailing zeros count in the size");
  if (info.blocks !== null) {
    assert.ok(info.blocks * 512 <= 64 << 10, `${info.blocks} blocks allocated`);
  }
});

Deno.test("writeFileAtomic() writes a sparse file in short pieces, any other in the default ones", async () => {
  await using dir = await tempDir();
  const data = randomBytes(1 << 20);
  // The files are real; only the size of each write is recorded.
  const { writeSync } = Deno.FsFile.prototype;
  const asked: number[] = [];
  Deno.FsFile.prototype.writeSync = function (bytes: Uint8Array) {
    asked.push(bytes.length);
    return writeSync.call(this, bytes);
  };
  try {
    for (const sparse of [true, false]) {
      asked.length = 0;
      const path = `${dir.path}/${sparse}`;
      await writeFileAtomic(path, ReadableStream.from([data.slice()]), {
        sparse,
        sync: false,
      });
      const piece = sparse ? SHORT_WRITE_PIECE : WRITE_PIECE;
      assert.deepEqual(asked, Array(data.length / piece).fill(piece));
      assert.equal(sameBytes(await Deno.readFile(path), data), undefined);
    }
  } finally {
    Deno.FsFile.prototype.writeSync = writeSync;
  }
});

Deno.test("writeFileAtomic() writes the amendment over the data, and refuses one past its end", async () => {
  await using dir = await tempDir();
  const text = new TextEncoder().encode("header=????; body");
  const amend = {
    patch: { offset: 7, bytes: new TextEncoder().encode("1234") },
  };
  await writeFileAtomic(`${dir.path}/a`, chunked(text, 3), { amend });
  assert.equal(await Deno.readTextFile(`${dir.path}/a`), "header=1234; body");
  const past = { patch: { offset: text.length - 1, bytes: new Uint8Array(2) } };
  await assert.rejects(
    () => writeFileAtomic(`${dir.path}/b`, chunked(text), { amend: past }),
    /ends past the end of the data/,
  );
  assert.deepEqual(await names(dir.path), ["a"]);
});

Deno.test("readFileAt() reads exactly the range, and a range past the end is a ShortReadError", async () => {
  await using dir = await tempDir();
  const data = randomBytes(10_000);
  await Deno.writeFile(`${dir.path}/f`, data);
  using file = await Deno.open(`${dir.path}/f`);
  for (
    const [offset, length] of [[0, 0], [0, 10_000], [123, 4567], [9999, 1]]
  ) {
    const bytes = await readFileAt(file, offset!, length!);
    assert.equal(
      sameBytes(bytes, data.subarray(offset!, offset! + length!)),
      undefined,
    );
  }
  await assert.rejects(
    () => readFileAt(file, 9000, 2000),
    (error: unknown) =>
      error instanceof ShortReadError && error.offset === 10_000 &&
      /the file ends after 10000$/.test(error.message),
  );
});

Deno.test("fsReason() gives the operating system's words, lower case, without the error number", async () => {
  await using dir = await tempDir();
  const caught = await Deno.stat(`${dir.path}/missing`).catch((e) => e);
  assert.equal(fsReason(caught), "no such file or directory");
  assert.equal(
    fsReason(new Error("Is a directory (os error 21): open 'x'")),
    "is a directory",
  );
  // Our own errors keep their message, first line.
  assert.equal(
    fsReason(new FileAccessError("Cannot read 'x': gone.\nmore", "x")),
    "Cannot read 'x': gone",
  );
});

Deno.test("writeFileAtomic() frees each chunk given away once written, and leaves the others", async () => {
  await using dir = await tempDir();
  for (const sparse of [false, true]) {
    const given = disposableChunk(randomBytes(200_000));
    const kept = textBytes(50_000, 3);
    const expected = new Uint8Array(250_000);
    expected.set(given);
    expected.set(kept, 200_000);
    const path = `${dir.path}/out-${sparse}`;
    await writeFileAtomic(path, ReadableStream.from([given, kept]), { sparse });
    assert.equal(sameBytes(await Deno.readFile(path), expected), undefined);
    assert.equal(given.length, 0, `sparse ${sparse}: the given chunk is freed`);
    assert.equal(kept.length, 50_000, `sparse ${sparse}: the other is not`);
  }
});
