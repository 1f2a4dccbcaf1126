/**
 * `debug -A "ARGS"`: the debugger's arguments split as a shell would, with
 * no shell, as coredumpctl's `--debugger-arguments`; checked with gdb.
 */

import assert from "node:assert/strict";
import { buildCrasher, kernelCore, runMain, tempDir } from "../_helpers.ts";
import { storeCore } from "../_store.ts";

Deno.test("debug -A gives gdb quoted arguments whole: -batch -ex 'thread apply all bt'", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path, "quoted");
  const core = await kernelCore(program, ["tiny"], dir.path);
  const store = `${dir.path}/store`;
  await storeCore(store, core, "quoted", ["-E", program.replaceAll("/", "!")]);
  const result = await runMain([
    "debug",
    "-p",
    store,
    "quoted",
    "-A",
    "-batch -nx -ex 'thread apply all bt'",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const out = new TextDecoder().decode(result.stdout);
  // gdb ran the whole quoted command: every thread's trace, main in it.
  assert.match(out, /^Thread 1 /m);
  assert.match(out, /^#0 .* main \(/m);
  const bad = await runMain(["debug", "-p", store, "quoted", "-A", "-ex 'bt"]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /Cannot use '--debugger-arguments': '-ex 'bt': expected a closing ' for the one at 4/,
  );
});
