import assert from "node:assert/strict";
import { stampUuid, UuidExistsError } from "../../lib/cli/mod.ts";
import { readUuid } from "../../lib/cli/mod.ts";
import { parseElf } from "../../lib/elf/mod.ts";
import { archFixtures, quietQemu } from "../_fixtures.ts";
import {
  buildCrasher,
  check,
  listDir,
  runMain,
  runTool,
  tempDir,
} from "../_helpers.ts";
import { readelfBuildId } from "../_readelf.ts";

const QEMU: Record<string, string> = {
  aarch64: "qemu-aarch64",
  armhf: "qemu-arm",
  mips: "qemu-mips",
  powerpc: "qemu-ppc",
};

/**
 * Starts the crash program in "wait" mode, returns what it printed once it
 * says "ready" (within 30 s: qemu can be slow to start), and kills it.
 */
async function runsToReady(argv: string[]): Promise<string> {
  const child = new Deno.Command(argv[0]!, {
    args: [...argv.slice(1), "wait"],
    stdout: "piped",
    stdin: "null",
    stderr: "null",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
  };
  const timer = setTimeout(kill, 30_000);
  let text = "";
  try {
    const reader = child.stdout.getReader();
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
  } finally {
    clearTimeout(timer);
    kill();
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
  return text;
}

/** The bytes `readelf -x SECTION` dumps. */
async function readelfHex(path: string, section: string): Promise<Uint8Array> {
  const out = await check("readelf", ["-x", section, path]);
  assert.match(out, new RegExp(`Hex dump of section '\\${section}'`));
  const bytes: number[] = [];
  for (const line of out.split("\n")) {
    const row = /^\s+0x[0-9a-f]+ ((?:[0-9a-f]{2,8} ){1,4})/.exec(line);
    if (!row) continue;
    for (const word of row[1]!.trim().split(" ")) {
      for (let i = 0; i < word.length; i += 2) {
        bytes.push(Number.parseInt(word.slice(i, i + 2), 16));
      }
    }
  }
  return new Uint8Array(bytes);
}

Deno.test("stampUuid() adds a .uuid that readelf shows, objcopy agrees with, and the program still runs", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  const text = "3f2b0c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f";
  const stamped = `${dir.path}/stamped`;
  const result = await stampUuid(program, { uuid: text, output: stamped });
  assert.deepEqual(result, { output: stamped, uuid: text });
  // readelf sees the section and its bytes.
  assert.deepEqual(
    await readelfHex(stamped, ".uuid"),
    new TextEncoder().encode(`${text}\n`),
  );
  // elfutils finds nothing wrong with the file.
  const lint = await runTool("eu-elflint", ["--gnu-ld", stamped]);
  assert.equal(lint.code, 0, new TextDecoder().decode(lint.stdout));
  // objcopy, given the same bytes, makes a file that reads the same.
  await Deno.writeTextFile(`${dir.path}/uuid.txt`, `${text}\n`);
  await check("objcopy", [
    "--add-section",
    `.uuid=${dir.path}/uuid.txt`,
    program,
    `${dir.path}/objcopied`,
  ]);
  assert.deepEqual(
    await readUuid(stamped),
    await readUuid(`${dir.path}/objcopied`),
  );
  // Everything else is as it was: the program runs and keeps its identity.
  assert.equal(await runsToReady([stamped]), "ready\n");
  assert.equal(await readelfBuildId(stamped), await readelfBuildId(program));
  assert.equal(
    (await Deno.stat(stamped)).mode! & 0o777,
    (await Deno.stat(program)).mode! & 0o777,
  );
  const before = parseElf(await Deno.readFile(program));
  const after = parseElf(await Deno.readFile(stamped));
  assert.deepEqual(after.programs, before.programs);
  assert.deepEqual(
    after.sections.slice(0, -1).map((s) => s.name),
    before.sections.map((s) => s.name),
  );
});

Deno.test("stampUuid() stamps programs of every architecture, which still run under qemu", async () => {
  await using dir = await tempDir();
  for (const fixture of await archFixtures()) {
    const stamped = `${dir.path}/${fixture.arch}`;
    const { uuid } = await stampUuid(fixture.program, { output: stamped });
    assert.match(
      uuid,
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(
      new TextDecoder().decode(await readUuid(stamped)),
      `${uuid}\n`,
      fixture.arch,
    );
    assert.match(
      await check("readelf", ["-x", ".uuid", stamped]),
      new RegExp(uuid.slice(0, 8)),
      fixture.arch,
    );
    // A copy of qemu that leaves no host core should the program crash.
    const qemu = QEMU[fixture.arch];
    assert.equal(
      await runsToReady(
        qemu === undefined ? [stamped] : [await quietQemu(qemu), stamped],
      ),
      "ready\n",
      fixture.arch,
    );
  }
});

Deno.test("stampUuid() refuses a program that has a .uuid unless forced, in place and atomically", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  await stampUuid(program, { uuid: "first" });
  assert.equal(new TextDecoder().decode(await readUuid(program)), "first\n");
  await assert.rejects(
    stampUuid(program, { uuid: "second" }),
    (error: unknown) => {
      assert.ok(error instanceof UuidExistsError);
      assert.match(
        error.message,
        /already has a \.uuid section, expected none \(use --force to replace it\)/,
      );
      return true;
    },
  );
  await stampUuid(program, { uuid: "second", force: true });
  assert.equal(new TextDecoder().decode(await readUuid(program)), "second\n");
  // Replacing keeps one .uuid section, and leaves no temporary file.
  const elf = parseElf(await Deno.readFile(program));
  assert.equal(elf.sections.filter((s) => s.name === ".uuid").length, 1);
  assert.deepEqual(await listDir(dir.path), ["crasher"]);
});

Deno.test("cli: uuid prints the bytes exactly; stamp and uuid fail with one line", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  const none = await runMain(["uuid", program]);
  assert.equal(none.code, 1);
  assert.match(
    none.stderr,
    /^gzcoredump: Cannot print the \.uuid of '.*crasher': it has no \.uuid section/,
  );
  const stamp = await runMain(["stamp", program, "--uuid", "board-7 build 42"]);
  assert.equal(stamp.code, 0, stamp.stderr);
  assert.match(
    new TextDecoder().decode(stamp.stdout),
    /stamped .*crasher with \.uuid board-7 build 42/,
  );
  const uuid = await runMain(["uuid", program]);
  assert.equal(uuid.code, 0);
  assert.deepEqual(uuid.stdout, new TextEncoder().encode("board-7 build 42\n"));
  const again = await runMain(["stamp", program]);
  assert.equal(again.code, 1);
  assert.equal(again.stderr.trim().split("\n").length, 1);
  assert.match(again.stderr, /already has a \.uuid section/);
  const notElf = await runMain(["uuid", "/etc/hostname"]);
  assert.equal(notElf.code, 1);
  assert.match(notElf.stderr, /^gzcoredump: Cannot parse ELF: found magic/);
  const usage = await runMain(["stamp"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Cannot run 'stamp': expected one file, found 0/);
});
