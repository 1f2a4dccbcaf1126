import assert from "node:assert/strict";
import { parseCaptureArgs, readConfigArgs } from "../../../lib/cli/mod.ts";
import { tempDir } from "../_temp.ts";

const MiB = 1024 * 1024;

Deno.test("readConfigArgs() turns name = value lines into options; comments and blanks go", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/gzcoredump.conf`;
  await Deno.writeTextFile(
    path,
    [
      "# The store's limits",
      "",
      "max-use = 64M",
      "rate=2/30m   # a comment after the value",
      "   max-count   =   7   ",
      "ignore-rlimit = yes",
      "mode = off",
      "before = /usr/bin/logger -t core",
      "\t# indented comment",
      "keep-free = 10%\r",
    ].join("\n"),
  );
  const { args, warnings } = await readConfigArgs(path);
  assert.deepEqual(warnings, []);
  assert.deepEqual(args, [
    "--max-use=64M",
    "--rate=2/30m",
    "--max-count=7",
    "--ignore-rlimit",
    "--before=/usr/bin/logger -t core",
    "--keep-free=10%",
  ]);
  // They are options the capture parser reads as the command line's.
  const command = parseCaptureArgs([...args, "-c"]);
  assert.deepEqual(command.warnings, []);
  assert.deepEqual(command.store, {
    maxUse: { bytes: 64 * MiB },
    rate: { count: 2, periodMs: 1_800_000 },
    maxCount: 7,
    ignoreRlimit: true,
    before: ["/usr/bin/logger", "-t", "core"],
    keepFree: { percent: 10 },
  });
});

Deno.test("readConfigArgs() options come first, so the command line wins", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/c.conf`;
  await Deno.writeTextFile(path, "max-count = 3\nmax-age = 2\n");
  const { args } = await readConfigArgs(path);
  const command = parseCaptureArgs([...args, "-c", "--max-count", "9"]);
  assert.equal(command.store.maxCount, 9);
  assert.equal(command.store.maxAgeMs, 2 * 86_400_000);
});

Deno.test("readConfigArgs() makes each bad line a warning with its number, and reads the rest", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/bad.conf`;
  await Deno.writeTextFile(
    path,
    [
      "max-count = 5",
      "this is not an option",
      "Max-Use = 1G",
      "= 5",
      "rate 5/1h",
      "max-records = 9",
      "bell = \x07",
    ].join("\n"),
  );
  const { args, warnings } = await readConfigArgs(path);
  assert.deepEqual(args, ["--max-count=5", "--max-records=9", "--bell=\x07"]);
  assert.equal(warnings.length, 4);
  for (const [i, line] of [2, 3, 4, 5].entries()) {
    assert.match(warnings[i]!, new RegExp(`^ignored line ${line} of '`));
    assert.match(warnings[i]!, /expected name = value$/);
    assert.ok(warnings[i]!.includes(path), "names the file");
  }
  // An unknown name passes here and is a warning of the parser.
  const command = parseCaptureArgs([...args, "-c"]);
  assert.equal(command.store.maxCount, 5);
  assert.equal(command.warnings.length, 1);
  assert.match(command.warnings[0]!, /ignored unknown argument '--bell=\\x07'/);
});

Deno.test("readConfigArgs() takes a missing file for none, unless it was named", async () => {
  await using dir = await tempDir();
  const missing = `${dir.path}/none.conf`;
  assert.deepEqual(await readConfigArgs(missing), { args: [], warnings: [] });
  const named = await readConfigArgs(missing, { required: true });
  assert.deepEqual(named.args, []);
  assert.equal(named.warnings.length, 1);
  assert.match(
    named.warnings[0]!,
    /^ignored config '.*none\.conf': cannot read it$/,
  );
});

Deno.test("readConfigArgs() refuses a directory and a file larger than 64 KiB, with a warning", async () => {
  await using dir = await tempDir();
  const directory = await readConfigArgs(dir.path);
  assert.deepEqual(directory.args, []);
  assert.match(
    directory.warnings[0]!,
    /expected a regular file of at most 65536 bytes/,
  );
  const big = `${dir.path}/big.conf`;
  await Deno.writeTextFile(big, `max-count = 5\n${"#".repeat(64 << 10)}\n`);
  const large = await readConfigArgs(big);
  assert.deepEqual(large.args, []);
  assert.match(
    large.warnings[0]!,
    /expected a regular file of at most 65536 bytes/,
  );
  // Just under the bound is read.
  const fits = `${dir.path}/fits.conf`;
  const line = "max-count = 5\n";
  await Deno.writeTextFile(fits, line + "#".repeat((64 << 10) - line.length));
  assert.deepEqual((await readConfigArgs(fits)).args, ["--max-count=5"]);
});

Deno.test("readConfigArgs() reads yes/true/on as a flag and no/false/off as nothing, in any case", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/b.conf`;
  const on = ["yes", "TRUE", "On"];
  const off = ["no", "False", "OFF"];
  await Deno.writeTextFile(
    path,
    [...on, ...off].map((v, i) => `flag-${"abcdef"[i]} = ${v}`).join("\n"),
  );
  const { args, warnings } = await readConfigArgs(path);
  assert.deepEqual(warnings, []);
  assert.deepEqual(args, ["--flag-a", "--flag-b", "--flag-c"]);
});
