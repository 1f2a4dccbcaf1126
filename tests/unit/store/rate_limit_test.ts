import assert from "node:assert/strict";
import {
  admit,
  type PolicyLimits,
  type RateRecord,
  readRateState,
  writeRateState,
} from "../../../lib/store/mod.ts";
import { tempDir } from "../_temp.ts";

const STATE = ".gzcoredump-rate.json";
const NOW = Date.UTC(2026, 10, 26, 9, 0, 0);
const HOUR = 3_600_000;
const DAY = 86_400_000;

async function read(directory: string, now = NOW) {
  const warnings: string[] = [];
  const records = await readRateState(directory, { now, warnings });
  return { records, warnings };
}

async function write(
  directory: string,
  records: readonly RateRecord[],
  now = NOW,
): Promise<string[]> {
  const warnings: string[] = [];
  await writeRateState(directory, records, { now, warnings });
  return warnings;
}

Deno.test("readRateState() of a store without state is an empty history, no warning", async () => {
  await using dir = await tempDir();
  assert.deepEqual(await read(dir.path), { records: [], warnings: [] });
});

Deno.test("writeRateState() then readRateState() gives the records back, oldest first", async () => {
  await using dir = await tempDir();
  const records: RateRecord[] = [
    { key: "/usr/bin/a", base: "Core_20261126_080000_a", at: NOW - 2 * HOUR },
    { key: "/usr/bin/b", base: "Core_20261126_083000_b", at: NOW - HOUR },
    { key: "/usr/bin/a", base: "Core_20261126_085959_a", at: NOW - 1000 },
  ];
  assert.deepEqual(await write(dir.path, records), []);
  assert.deepEqual(await read(dir.path), { records, warnings: [] });
  // Only the state file is left: written atomically, private.
  const names = (await Array.fromAsync(Deno.readDir(dir.path))).map((e) =>
    e.name
  );
  assert.deepEqual(names, [STATE]);
  const mode = (await Deno.stat(`${dir.path}/${STATE}`)).mode! & 0o777;
  assert.equal(mode, 0o600);
  // Written again, it replaces the file.
  assert.deepEqual(await write(dir.path, records.slice(1)), []);
  assert.deepEqual((await read(dir.path)).records, records.slice(1));
});

Deno.test("readRateState() sorts records by time and clamps future ones to now", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    `${dir.path}/${STATE}`,
    JSON.stringify({
      version: 2,
      records: [
        { key: "c", base: "x", at: NOW + DAY },
        { key: "a", base: "y", at: NOW - 50 },
        { key: "b", base: "z", at: NOW - 100 },
      ],
    }),
  );
  const { records, warnings } = await read(dir.path);
  assert.deepEqual(warnings, []);
  assert.deepEqual(records.map((r) => [r.key, r.at]), [
    ["b", NOW - 100],
    ["a", NOW - 50],
    ["c", NOW],
  ]);
});

Deno.test("readRateState() skips malformed records and reads the first version's shape", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/${STATE}`;
  await Deno.writeTextFile(
    path,
    `{"records": [null, 7, {"key": 1, "at": 5}, {"key": "k"}, {"key": "k", "at": "5"},
      {"key": "k", "at": 1e999}, {"key": "ok", "at": ${NOW - 10}, "base": 3},
      {"key": "ok", "base": "Core_1", "at": ${NOW - 5}}]}`,
  );
  const first = await read(dir.path);
  assert.deepEqual(first.warnings, []);
  assert.deepEqual(first.records, [
    { key: "ok", base: "", at: NOW - 10 },
    { key: "ok", base: "Core_1", at: NOW - 5 },
  ]);
  // Version 1: { program: [times] }.
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      "/usr/bin/a": [NOW - 3000, NOW - 1000],
      "/usr/bin/b": [NOW - 2000, "junk"],
      "/usr/bin/c": "not a list",
    }),
  );
  assert.deepEqual((await read(dir.path)).records, [
    { key: "/usr/bin/a", base: "", at: NOW - 3000 },
    { key: "/usr/bin/b", base: "", at: NOW - 2000 },
    { key: "/usr/bin/a", base: "", at: NOW - 1000 },
  ]);
});

Deno.test("readRateState() warns about a damaged, oversized or irregular state and never throws", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/${STATE}`;
  for (const damaged of ["{", "", "\x00\x01garbage", '{"records": [1,']) {
    await Deno.writeTextFile(path, damaged);
    const { records, warnings } = await read(dir.path);
    assert.deepEqual(records, [], JSON.stringify(damaged));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /^ignored the rate state '.*\.gzcoredump-rate\.json': expected JSON, found damaged text$/,
    );
  }
  // JSON that is not an object is no history, and no warning either.
  for (const other of ["null", "42", '"text"', "[1, 2]"]) {
    await Deno.writeTextFile(path, other);
    assert.deepEqual(await read(dir.path), { records: [], warnings: [] });
  }
  // Larger than 1 MiB: not read at all.
  await Deno.writeTextFile(path, " ".repeat((1 << 20) + 1));
  const big = await read(dir.path);
  assert.deepEqual(big.records, []);
  assert.match(big.warnings[0]!, /\d+ bytes, expected at most 1048576/);
  // A symlink is not followed, a directory not read.
  await Deno.remove(path);
  await Deno.writeTextFile(`${dir.path}/elsewhere.json`, '{"records": []}');
  await Deno.symlink(`${dir.path}/elsewhere.json`, path);
  const link = await read(dir.path);
  assert.deepEqual(link.records, []);
  assert.match(link.warnings[0]!, /it is not a regular file$/);
  await Deno.remove(path);
  await Deno.mkdir(path);
  assert.match((await read(dir.path)).warnings[0]!, /not a regular file/);
});

Deno.test("writeRateState() forgets records of more than a week, whatever the period", async () => {
  await using dir = await tempDir();
  const records: RateRecord[] = [
    { key: "a", base: "old", at: NOW - 7 * DAY },
    { key: "a", base: "almost", at: NOW - 7 * DAY + 1 },
    { key: "a", base: "new", at: NOW - HOUR },
  ];
  assert.deepEqual(await write(dir.path, records), []);
  const back = (await read(dir.path)).records.map((r) => r.base);
  assert.deepEqual(back, ["almost", "new"]);
});

Deno.test("writeRateState() keeps at most 4096 records, the newest", async () => {
  await using dir = await tempDir();
  const records: RateRecord[] = Array.from({ length: 4100 }, (_, i) => ({
    key: "/usr/bin/loop",
    base: `Core_${i}`,
    at: NOW - (4100 - i) * 1000,
  }));
  assert.deepEqual(await write(dir.path, records), []);
  const back = (await read(dir.path)).records;
  assert.equal(back.length, 4096);
  assert.deepEqual(back, records.slice(4));
});

Deno.test("writeRateState() keeps the newest 4096 records when they come newest first", async () => {
  await using dir = await tempDir();
  const records: RateRecord[] = Array.from({ length: 4100 }, (_, i) => ({
    key: "/usr/bin/loop",
    base: `Core_${i}`,
    at: NOW - (4100 - i) * 1000,
  }));
  assert.deepEqual(await write(dir.path, records.toReversed()), []);
  const back = (await read(dir.path)).records;
  assert.deepEqual(
    back.map((r) => r.base),
    records.slice(4).map((r) => r.base),
  );
});

Deno.test("writeRateState() that cannot write says so in a warning", async () => {
  await using dir = await tempDir();
  const warnings = await write(`${dir.path}/missing`, [
    { key: "a", base: "b", at: NOW },
  ]);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /^Cannot update the rate state '.*missing\/\.gzcoredump-rate\.json': /,
  );
});

Deno.test("records read back drive admit()'s --rate: those within the period count, older ones not", async () => {
  await using dir = await tempDir();
  const limits: PolicyLimits = {
    maxUse: 1e12,
    keepFree: 0,
    maxCount: 100,
    maxRecords: 100,
    maxAgeMs: 14 * DAY,
    rate: { count: 3, periodMs: HOUR },
  };
  const request = (history: RateRecord[]) => ({
    rateKey: "/usr/bin/app",
    sidecarBytes: 4096,
    free: 1e12,
    clocks: { wallMs: NOW, uptimeMs: 1e7, bootId: "b" },
    history,
  });
  const mine = (at: number, i: number) => ({
    key: "/usr/bin/app",
    base: `Core_${i}`,
    at,
  });
  // Three within the hour: the fourth is refused.
  await write(dir.path, [NOW - 3000, NOW - 2000, NOW - 1000].map(mine));
  const within = admit([], request((await read(dir.path)).records), limits);
  assert.match(
    within.reason ?? "",
    /more than 3 cores of '\/usr\/bin\/app' within 60 minutes \(--rate\)/,
  );
  // The same three, more than an hour ago, and another program's: stored.
  await write(dir.path, [
    ...[NOW - 3 * HOUR, NOW - 2 * HOUR, NOW - HOUR].map(mine),
    { key: "/usr/bin/other", base: "Core_o", at: NOW - 1 },
  ]);
  const outside = admit([], request((await read(dir.path)).records), limits);
  assert.equal(outside.reason, undefined);
});
