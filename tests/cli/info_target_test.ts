/**
 * `info NAME` where a file of that name is here too: the stored core wins
 * (a name that is not a path is an ID), and the tool says which it took;
 * `./NAME` is the file. A raw core's time is said to be the file's.
 */

import assert from "node:assert/strict";
import { crashCore, runMain, tempDir } from "../_helpers.ts";
import { storeCore } from "../_store.ts";

Deno.test("info app: the stored core wins over ./app, and says so; a raw core's time is the file's", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const store = `${dir.path}/store`;
  await storeCore(store, core, "app");
  await Deno.copyFile("/bin/true", `${dir.path}/app`);
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const byName = await runMain(["info", "app", "-p", store], {
    cwd: dir.path,
  });
  assert.equal(byName.code, 0, byName.stderr);
  assert.match(
    text(byName.stdout),
    /^File: +\S+\/store\/Core_\d{8}_\d{6}_app\.gz /m,
  );
  assert.match(
    byName.stderr,
    /'app' is a file here and names a stored core: describing the stored \S+\/Core_\d{8}_\d{6}_app\.gz \(give \.\/app for the file\)/,
  );
  const byPath = await runMain(["info", "./app", "-p", store], {
    cwd: dir.path,
  });
  assert.equal(byPath.code, 0, byPath.stderr);
  assert.match(text(byPath.stdout), /^File: +\.\/app \(\d+ bytes\)/m);
  assert.equal(byPath.stderr, "");
  const raw = await runMain(["info", core]);
  assert.match(
    text(raw.stdout),
    /^Time: +\S+ \(the file's modification time: a raw core holds no crash time\)$/m,
  );
});
