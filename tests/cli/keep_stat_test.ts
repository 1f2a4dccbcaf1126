/**
 * `-c -f` and `-d -f` give the output the input's mode and modification
 * time, as gzip and gunzip do (checked against them on the same files).
 */

import assert from "node:assert/strict";
import { check, runMain, tempDir } from "../_helpers.ts";

Deno.test("cli: -c -f and -d -f keep the input's mode and mtime, as gzip does", async () => {
  await using dir = await tempDir();
  const ours = `${dir.path}/ours.log`;
  const theirs = `${dir.path}/theirs.log`;
  const text = "a line of a log\n".repeat(5000);
  const when = new Date("2020-02-03T04:05:06Z");
  for (const path of [ours, theirs]) {
    await Deno.writeTextFile(path, text);
    await Deno.chmod(path, 0o640);
    await Deno.utime(path, when, when);
  }
  const compressed = await runMain(["-c", "-f", ours]);
  assert.equal(compressed.code, 0, compressed.stderr);
  await check("gzip", ["-k", theirs]);
  const stat = async (path: string) => {
    const info = await Deno.stat(path);
    return { mode: info.mode! & 0o7777, mtime: info.mtime?.getTime() };
  };
  assert.deepEqual(await stat(`${ours}.gz`), await stat(`${theirs}.gz`));
  assert.deepEqual(await stat(`${ours}.gz`), {
    mode: 0o640,
    mtime: when.getTime(),
  });
  // And back: gunzip keeps the .gz's mode and time.
  await Deno.remove(ours);
  await Deno.remove(theirs);
  await Deno.chmod(`${ours}.gz`, 0o604);
  await Deno.chmod(`${theirs}.gz`, 0o604);
  const later = new Date("2021-03-04T05:06:07Z");
  await Deno.utime(`${ours}.gz`, later, later);
  await Deno.utime(`${theirs}.gz`, later, later);
  const decompressed = await runMain(["-d", "-f", `${ours}.gz`]);
  assert.equal(decompressed.code, 0, decompressed.stderr);
  await check("gzip", ["-d", "-k", `${theirs}.gz`]);
  assert.deepEqual(await stat(ours), await stat(theirs));
  assert.equal(await Deno.readTextFile(ours), text);
});
