import assert from "node:assert/strict";
import { RESERVATION_BYTES, reserveSidecar } from "../../../lib/store/mod.ts";
import { tempDir } from "../_temp.ts";

Deno.test("reserveSidecar() writes the first record padded to the reservation, still valid JSON", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/Core_20260101_000000.json`;
  const record = { state: "capturing", seq: 3, warnings: ["a", "b"] };
  const reservation = await reserveSidecar(path, record, { mode: 0o600 });
  try {
    assert.equal(reservation.path, path);
    assert.equal(reservation.bytes, RESERVATION_BYTES);
    const info = await Deno.stat(path);
    assert.equal(info.size, RESERVATION_BYTES);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), record);
  } finally {
    reservation.close();
  }
});

Deno.test("reserveSidecar() takes a name only once: the second reservation fails with AlreadyExists", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/Core_20260101_000000.json`;
  const first = await reserveSidecar(path, { n: 1 }, { mode: 0o600 });
  first.close();
  await assert.rejects(
    () => reserveSidecar(path, { n: 2 }, { mode: 0o600 }),
    Deno.errors.AlreadyExists,
  );
  assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), { n: 1 });
});

Deno.test("update() writes records over the reserved bytes; a larger one grows the file", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/r.json`;
  const reservation = await reserveSidecar(path, { long: "x".repeat(1000) }, {
    mode: 0o600,
  });
  try {
    await reservation.update({ short: 1 });
    assert.equal((await Deno.stat(path)).size, RESERVATION_BYTES);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), { short: 1 });
    const big = { big: "y".repeat(RESERVATION_BYTES * 2) };
    await reservation.update(big);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), big);
    assert.ok(reservation.bytes > RESERVATION_BYTES);
    // A smaller one after it still reads back alone.
    await reservation.update({ after: true });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), {
      after: true,
    });
  } finally {
    reservation.close();
  }
});

Deno.test("finish() leaves exactly the final record, pretty-printed, with the file's mode", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/f.json`;
  const reservation = await reserveSidecar(path, { state: "capturing" }, {
    mode: 0o640,
  });
  const final = { state: "stored", archive: "f.gz", bytes: 1234 };
  await reservation.finish(final);
  assert.equal(
    await Deno.readTextFile(path),
    JSON.stringify(final, null, 2) + "\n",
  );
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
  // Only the sidecar is left: no temporary file of the atomic write.
  const names = (await Array.fromAsync(Deno.readDir(dir.path))).map((e) =>
    e.name
  );
  assert.deepEqual(names, ["f.json"]);
  // Closing after finishing is harmless.
  reservation.close();
});
