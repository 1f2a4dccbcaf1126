import assert from "node:assert/strict";
import {
  SHORT_WRITE_PIECE,
  WRITE_PIECE,
  writeAll,
  writeAllSync,
} from "../../../lib/fs/mod.ts";
import { randomBytes, sameBytes, tempDir } from "../_temp.ts";

// The file is real; the wrapper only records what each write asked for,
// and may let the file take less than that, as a pipe or a signal does.
function recording(file: Deno.FsFile, most = Infinity) {
  const asked: number[] = [];
  return {
    asked,
    writeSync(bytes: Uint8Array) {
      asked.push(bytes.length);
      return file.writeSync(bytes.subarray(0, most));
    },
    write(bytes: Uint8Array) {
      asked.push(bytes.length);
      return file.write(bytes.subarray(0, most));
    },
  };
}

// Writes with writeAllSync() or writeAll() into a new file `mode` in `dir`,
// through the recording wrapper; a throw of writeAllSync() is a rejection.
async function writeWith(
  dir: string,
  mode: "sync" | "async",
  data: Uint8Array,
  options: { piece?: number; most?: number } = {},
) {
  const path = `${dir}/${mode}`;
  using file = await Deno.open(path, { write: true, createNew: true });
  const writer = recording(file, options.most);
  const pieces = options.piece === undefined ? {} : { piece: options.piece };
  const again = (more: { piece: number }) =>
    mode === "sync"
      ? Promise.resolve().then(() => writeAllSync(writer, data, more))
      : writeAll(writer, data, more);
  if (mode === "sync") writeAllSync(writer, data, pieces);
  else await writeAll(writer, data, pieces);
  return { path, asked: writer.asked, again };
}

Deno.test("writeAllSync() and writeAll() write a large buffer whole, in writes of at most 256 KiB", async () => {
  await using dir = await tempDir();
  const data = randomBytes(3 * WRITE_PIECE + 12_345);
  for (const mode of ["sync", "async"] as const) {
    const { path, asked } = await writeWith(dir.path, mode, data);
    assert.equal(WRITE_PIECE, 256 << 10);
    assert.deepEqual(asked, [
      WRITE_PIECE,
      WRITE_PIECE,
      WRITE_PIECE,
      12_345,
    ]);
    assert.equal(sameBytes(await Deno.readFile(path), data), undefined);
  }
});

Deno.test("writeAllSync() and writeAll() go on after short writes", async () => {
  await using dir = await tempDir();
  const data = randomBytes(100_000);
  for (const mode of ["sync", "async"] as const) {
    const { path, asked } = await writeWith(dir.path, mode, data, {
      most: 30_000,
    });
    assert.deepEqual(asked, [100_000, 70_000, 40_000, 10_000]);
    assert.equal(sameBytes(await Deno.readFile(path), data), undefined);
  }
});

Deno.test("writeAllSync() and writeAll() write in the piece asked for, and refuse one that is not a whole number of bytes, at least 1", async () => {
  await using dir = await tempDir();
  const data = randomBytes(2 * SHORT_WRITE_PIECE + 7);
  for (const mode of ["sync", "async"] as const) {
    const { path, asked, again } = await writeWith(dir.path, mode, data, {
      piece: SHORT_WRITE_PIECE,
    });
    assert.equal(SHORT_WRITE_PIECE, 32 << 10);
    assert.deepEqual(asked, [SHORT_WRITE_PIECE, SHORT_WRITE_PIECE, 7]);
    assert.equal(sameBytes(await Deno.readFile(path), data), undefined);
    for (const piece of [0, -1, 1.5, NaN]) {
      const refused = await again({ piece }).catch((error) => error);
      assert.ok(refused instanceof RangeError, String(refused));
      assert.match(
        refused.message,
        /expected options\.piece to be a whole number of bytes, at least 1, found/,
      );
    }
    assert.equal(asked.length, 3, "a refused piece writes nothing");
  }
});
