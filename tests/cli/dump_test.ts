/**
 * `extract` without `-o`, and its `dump` alias: the raw core to stdout, as
 * `coredumpctl dump` writes it, unless stdout is a terminal (tmux's),
 * which is refused as gzip refuses it.
 */

import assert from "node:assert/strict";
import {
  crashCore,
  fileDigest,
  mainCommand,
  onTerminal,
  runMain,
  tempDir,
} from "../_helpers.ts";
import { storeCore } from "../_store.ts";

Deno.test("dump writes the raw core to stdout, and refuses a terminal without --force", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const store = `${dir.path}/store`;
  await storeCore(store, core, "dumped");
  for (const command of ["dump", "extract"]) {
    const result = await runMain([command, "-p", store, "dumped"]);
    assert.equal(result.code, 0, result.stderr);
    await Deno.writeFile(`${dir.path}/out`, result.stdout);
    assert.equal(
      await fileDigest(`${dir.path}/out`),
      await fileDigest(core),
      command,
    );
  }
  // On a terminal (tmux): one line, exit 2, and no core bytes written.
  const argv = [...mainCommand(), "dump", "-p", store, "dumped"];
  const terminal = await onTerminal(argv.map((a) => `'${a}'`).join(" "));
  const shown = terminal.shown;
  assert.equal(terminal.code, 2, shown);
  assert.match(
    shown,
    /Cannot write a core to a terminal: expected '-o FILE', or stdout redirected to a file or a pipe \(--force writes it anyway\)/,
  );
  assert.ok(!shown.includes("ELF"), "no core on the terminal");
});
