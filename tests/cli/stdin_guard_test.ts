/**
 * `-c` is for the kernel's pipe: with stdout open and no `-p` (someone's
 * `gzcoredump -c < file > out.gz`) it refuses with the command that does
 * that; and compressed data is not written to a terminal unless --force,
 * as gzip refuses it (on tmux's terminal).
 */

import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import {
  defaultStore,
  mainCommand,
  onTerminal,
  runMain,
  tempDir,
} from "../_helpers.ts";

Deno.test("-c with stdout open and no -p refuses, naming -c -f - -o -; that one compresses stdin", async () => {
  // In a private /var: a capture that should not happen would land there.
  await using store = await defaultStore();
  const data = new TextEncoder().encode("not a crash, a file\n".repeat(100));
  const refused = await store.runMain(["-c"], { stdin: data });
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /Cannot capture: stdin is not the kernel's \(stdout is open and no -p was given\); to compress stdin to stdout use 'gzcoredump -c -f - -o -'/,
  );
  assert.equal(refused.stdout.length, 0);
  assert.deepEqual(await store.files(), []);
  const piped = await runMain(["-c", "-f", "-", "-o", "-"], { stdin: data });
  assert.equal(piped.code, 0, piped.stderr);
  assert.deepEqual(new Uint8Array(gunzipSync(piped.stdout)), data);
});

Deno.test("-c -f FILE -o - refuses a terminal without --force, as gzip does", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/log`;
  await Deno.writeTextFile(input, "a line\n".repeat(1000));
  const argv = (extra: string[]) =>
    [...mainCommand(), "-c", "-f", input, "-o", "-", ...extra].map((a) =>
      `'${a}'`
    ).join(" ");
  const refused = await onTerminal(argv([]));
  assert.equal(refused.code, 2, refused.shown);
  assert.match(
    refused.shown,
    /Cannot write compressed data to a terminal: expected '-o FILE' or stdout redirected \(--force writes it anyway\)/,
  );
  // Stdin to a terminal: gzip refuses it too.
  const stdin = await onTerminal(
    `${
      [...mainCommand(), "-c", "-f", "-", "-o", "-"].map((a) => `'${a}'`)
        .join(" ")
    } < '${input}'`,
  );
  assert.equal(stdin.code, 2, stdin.shown);
  const gzip = await onTerminal(`gzip -c - < '${input}'`);
  assert.match(gzip.shown, /compressed data not written to a terminal/);
  const forced = await onTerminal(argv(["--force"]));
  assert.equal(forced.code, 0, forced.shown);
});
