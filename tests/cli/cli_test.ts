import assert from "node:assert/strict";
import {
  check,
  crashCore,
  defaultStore,
  elfType,
  fileDigest,
  listDir,
  mainCommand,
  pythonInflate,
  runMain,
  runTool,
  tempDir,
} from "../_helpers.ts";
import denoJson from "../../deno.json" with { type: "json" };

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Asserts one line on stderr matching `pattern`, and no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0]!, /^gzcoredump: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/);
}

Deno.test("cli: -h prints the original's usage lines and options", async () => {
  const result = await runMain(["-h"]);
  assert.equal(result.code, 0);
  const out = text(result.stdout);
  assert.match(out, new RegExp(`gzcoredump version: ${denoJson.version}`));
  assert.match(out, /gzcoredump -c \[-p path\] \[-a argument\]/);
  assert.match(
    out,
    /gzcoredump -d -f inputfile -o outputfile|gzcoredump -d -f inputfile \[-o outputfile\]/,
  );
  for (const option of ["-c", "-d", "-p", "-a", "-f", "-o", "-h"]) {
    assert.match(out, new RegExp(`^\\s+${option}[ ,]`, "m"), option);
  }
  const version = await runMain(["--version"]);
  assert.equal(version.code, 0);
  assert.equal(text(version.stdout).trim(), `gzcoredump ${denoJson.version}`);
});

Deno.test("cli: the original's usage lines capture a real core and restore it byte for byte", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const store = `${dir.path}/store/nested`;
  const captured = await runMain(["-c", "-p", store, "-a", "crasher"], {
    stdin: { path: core },
  });
  assert.equal(captured.code, 0, captured.stderr);
  assert.equal(captured.stderr, "");
  const names = await listDir(store);
  assert.equal(names.length, 2, names.join(" "));
  const archive = names.find((n) => n.endsWith(".gz"))!;
  assert.match(archive, /^Core_\d{8}_\d{6}_crasher\.gz$/);
  assert.equal(
    names.find((n) => n.endsWith(".json")),
    archive.replace(/\.gz$/, ".json"),
  );
  assert.equal((await Deno.stat(store)).mode! & 0o777, 0o700);
  for (const name of names) {
    assert.equal(
      (await Deno.stat(`${store}/${name}`)).mode! & 0o777,
      0o600,
      name,
    );
  }
  await check("gzip", ["-t", `${store}/${archive}`]);
  const restored = `${dir.path}/core.restored`;
  const decompressed = await runMain([
    "-d",
    "-f",
    `${store}/${archive}`,
    "-o",
    restored,
  ]);
  assert.equal(decompressed.code, 0, decompressed.stderr);
  assert.equal(await fileDigest(restored), await fileDigest(core));
  assert.equal(elfType(await Deno.readFile(restored)), 4); // ET_CORE
  const metadata = JSON.parse(
    await Deno.readTextFile(`${store}/${archive.replace(/\.gz$/, ".json")}`),
  );
  assert.equal(metadata.archive, archive);
  assert.equal(metadata.core_size, (await Deno.stat(core)).size);
  assert.equal(
    metadata.compressed_size,
    (await Deno.stat(`${store}/${archive}`)).size,
  );
});

Deno.test("cli: capture records kernel facts and names the core after --time in UTC", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const result = await runMain([
    "-c",
    "-p",
    dir.path,
    "-P",
    "4242",
    "-u",
    "1000",
    "-g",
    "1001",
    "-s",
    "11",
    "-t",
    "1764147907",
    "-r",
    "18446744073709551615",
    "-D",
    "1",
    "-H",
    "board7",
    "-E",
    "!opt!app!bin!crasher",
    "-a",
    "crasher",
  ], { stdin: { path: core } });
  assert.equal(result.code, 0, result.stderr);
  const metadata = JSON.parse(
    await Deno.readTextFile(`${dir.path}/Core_20251126_090507_crasher.json`),
  );
  assert.equal(metadata.pid, 4242);
  assert.equal(metadata.uid, 1000);
  assert.equal(metadata.gid, 1001);
  assert.equal(metadata.signal, 11);
  assert.equal(metadata.signal_name, "SIGSEGV");
  assert.equal(metadata.time, "2025-11-26T09:05:07.000Z");
  assert.equal(metadata.hostname, "board7");
  assert.equal(metadata.exe, "/opt/app/bin/crasher");
  assert.equal(metadata.dumpable, 1);
  // RLIM_INFINITY: no limit.
  assert.equal(metadata.rlimit, "unlimited");
  // The program named by -E does not exist here: said, not fatal.
  assert.deepEqual(metadata.warnings, [
    "Cannot read '/opt/app/bin/crasher': no such file or directory (the program, from --exe)",
  ]);
});

Deno.test("cli: crashes in the same second get distinct names and nothing is overwritten", async () => {
  await using dir = await tempDir();
  const args = ["-c", "-p", dir.path, "-t", "1764147907", "-a", "same"];
  for (const content of ["one", "two", "three"]) {
    const result = await runMain(args, {
      stdin: new TextEncoder().encode(content),
    });
    assert.equal(result.code, 0, result.stderr);
  }
  assert.deepEqual(await listDir(dir.path), [
    "Core_20251126_090507_same-2.gz",
    "Core_20251126_090507_same-2.json",
    "Core_20251126_090507_same-3.gz",
    "Core_20251126_090507_same-3.json",
    "Core_20251126_090507_same.gz",
    "Core_20251126_090507_same.json",
  ]);
  const first = await runTool("gzip", [
    "-dc",
    `${dir.path}/Core_20251126_090507_same.gz`,
  ]);
  assert.equal(text(first.stdout), "one");
  const third = await runTool("gzip", [
    "-dc",
    `${dir.path}/Core_20251126_090507_same-3.gz`,
  ]);
  assert.equal(text(third.stdout), "three");
});

Deno.test("cli: a hostile -a cannot leave the store or hide a file", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  for (
    const argument of [
      "../../escape",
      "a/../../b",
      "\n\t\x01",
      "..",
      "  ",
      "\udc80x",
    ]
  ) {
    const result = await runMain(["-c", "-p", store, "-a", argument], {
      stdin: new TextEncoder().encode("core"),
    });
    assert.equal(result.code, 0, result.stderr);
  }
  assert.deepEqual(await listDir(dir.path), ["store"]);
  for (const name of await listDir(store)) {
    assert.match(
      name,
      /^Core_\d{8}_\d{6}(_[\p{L}\p{N}._+-]+)?(-\d+)?\.(gz|json)$/u,
      name,
    );
  }
});

Deno.test("cli: capture with a bad -p, unknown options and bad values still stores the core", async () => {
  await using dir = await tempDir();
  await using store = await defaultStore();
  const file = `${dir.path}/not-a-dir`;
  await Deno.writeTextFile(file, "x");
  const core = await crashCore(dir.path);
  const result = await store.runMain([
    "-c",
    "--frobnicate",
    "-P",
    "notapid",
    "--level",
    "99",
    "-p",
    `${file}/sub`,
    "-a",
    store.marker,
  ], { stdin: { path: core } });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /ignored unknown argument '--frobnicate'/);
  assert.match(
    result.stderr,
    /ignored '--pid notapid': expected a whole number/,
  );
  assert.match(result.stderr, /Cannot use level '99'/);
  assert.match(result.stderr, /storing in '\/var\/crash' instead/);
  const stored = await store.files();
  const gz = stored.find((n) => n.endsWith(".gz"));
  assert.ok(gz, stored.join(" "));
  const restored = `${dir.path}/restored`;
  const decompressed = await runMain([
    "-d",
    "-f",
    `${store.path}/${gz}`,
    "-o",
    restored,
  ]);
  assert.equal(decompressed.code, 0, decompressed.stderr);
  assert.equal(await fileDigest(restored), await fileDigest(core));
  assert.equal((await Deno.stat(store.path)).mode! & 0o777, 0o700);
});

Deno.test("cli: a store directory that is a symlink is refused", async () => {
  await using dir = await tempDir();
  await using store = await defaultStore();
  await Deno.mkdir(`${dir.path}/target`);
  await Deno.symlink(`${dir.path}/target`, `${dir.path}/link`);
  const result = await store.runMain(
    ["-c", "-p", `${dir.path}/link`, "-a", store.marker],
    { stdin: new TextEncoder().encode("core") },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /is a symbolic link, expected a real directory/);
  assert.deepEqual(await listDir(`${dir.path}/target`), []);
  assert.equal((await store.files()).length, 2);
});

Deno.test("cli: capture works as the kernel runs it: empty environment, cwd /, no stdout or stderr", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const [deno, ...rest] = mainCommand();
  const command = [
    deno!,
    ...rest,
    "-c",
    "-p",
    `${dir.path}/store`,
    "-a",
    "kernel_like",
  ]
    .map((arg) => `'${arg}'`).join(" ");
  // env -i clears the environment; the shell closes fds 1 and 2 for the tool.
  const result = await runTool("env", [
    "-i",
    "/bin/sh",
    "-c",
    `cd / && ulimit -c 1 && exec ${command} <'${core}' >&- 2>&-`,
  ], { clearEnv: true });
  assert.equal(result.code, 0);
  const names = await listDir(`${dir.path}/store`);
  assert.equal(names.length, 2, names.join(" "));
  const gz = names.find((n) => n.endsWith(".gz"))!;
  assert.equal(
    await pythonInflate(`${dir.path}/store/${gz}`, 31),
    await fileDigest(core),
  );
});

Deno.test("cli: -c from a terminal is a usage error, not a silent wait", async () => {
  const result = await runTool("script", [
    "-qec",
    `${mainCommand().join(" ")} -c -p /nonexistent`,
    "/dev/null",
  ]);
  assert.equal(result.code, 2);
  assert.match(text(result.stdout), /Cannot capture a core from a terminal/);
});

Deno.test("cli: -c -f and -d -f round-trip a file with default names, both formats", async () => {
  await using dir = await tempDir();
  const core = await crashCore(dir.path);
  const digest = await fileDigest(core);
  const compressed = await runMain(["-c", "-f", core]);
  assert.equal(compressed.code, 0, compressed.stderr);
  assert.equal((await Deno.stat(`${core}.gz`)).mode! & 0o777, 0o600);
  await check("gzip", ["-t", `${core}.gz`]);
  assert.match(await check("7z", ["t", `${core}.gz`]), /Everything is Ok/);
  const zlib = await runMain([
    "-c",
    "-f",
    core,
    "--format",
    "zlib",
    "--level",
    "1",
  ]);
  assert.equal(zlib.code, 0, zlib.stderr);
  assert.equal(await pythonInflate(`${core}.zz`, 15), digest);
  assert.notEqual((await runTool("7z", ["t", `${core}.zz`])).code, 0);

  await Deno.rename(core, `${core}.orig`);
  assert.equal((await runMain(["-d", "-f", `${core}.gz`])).code, 0);
  assert.equal(await fileDigest(core), digest);
  await Deno.remove(core);
  assert.equal((await runMain(["-d", "-f", `${core}.zz`])).code, 0);
  assert.equal(await fileDigest(core), digest);
  // The inputs are kept.
  assert.ok((await Deno.stat(`${core}.gz`)).isFile);
  assert.ok((await Deno.stat(`${core}.zz`)).isFile);
});

Deno.test("cli: the format is read from the bytes, not the name", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/data`;
  await Deno.writeTextFile(input, "hello zlib\n".repeat(100));
  assert.equal(
    (await runMain([
      "-c",
      "-f",
      input,
      "-o",
      `${dir.path}/looks.gz`,
      "--format",
      "zlib",
    ])).code,
    0,
  );
  const result = await runMain(["-d", "-f", `${dir.path}/looks.gz`, "-o", "-"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(text(result.stdout), "hello zlib\n".repeat(100));
});

Deno.test("cli: -f - and -o - stream stdin to stdout", async () => {
  const data = new TextEncoder().encode("stream me\n".repeat(1000));
  const compressed = await runMain(["-c", "-f", "-", "-o", "-"], {
    stdin: data,
  });
  assert.equal(compressed.code, 0, compressed.stderr);
  const restored = await runMain(["-d", "-f", "-", "-o", "-"], {
    stdin: compressed.stdout,
  });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(restored.stdout, data);
  const gunzip = await runTool("gzip", ["-dc"], { stdin: compressed.stdout });
  assert.deepEqual(gunzip.stdout, data);
});

Deno.test("cli: an existing output is never overwritten without --force", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/data`;
  await Deno.writeTextFile(input, "new content");
  await Deno.writeTextFile(`${input}.gz`, "precious");
  const refused = await runMain(["-c", "-f", input]);
  assert.equal(refused.code, 1);
  assertOneLine(
    refused.stderr,
    /a file of that name exists.*use --force to replace it/,
  );
  assert.equal(await Deno.readTextFile(`${input}.gz`), "precious");
  assert.deepEqual(await listDir(dir.path), ["data", "data.gz"]);
  const forced = await runMain(["-c", "-f", input, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  const out = await runTool("gzip", ["-dc", `${input}.gz`]);
  assert.equal(text(out.stdout), "new content");
});

Deno.test("cli: corrupt, truncated and foreign inputs fail with one line and leave nothing", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/data`;
  const data = new Uint8Array(200000);
  crypto.getRandomValues(data.subarray(0, 65536));
  await Deno.writeFile(input, data);
  await runMain(["-c", "-f", input, "-o", `${dir.path}/good.gz`]);
  await runMain([
    "-c",
    "-f",
    input,
    "-o",
    `${dir.path}/good.zz`,
    "--format",
    "zlib",
  ]);
  const gz = await Deno.readFile(`${dir.path}/good.gz`);
  const zz = await Deno.readFile(`${dir.path}/good.zz`);
  const badCrc = gz.slice();
  badCrc[badCrc.length - 6]! ^= 1;
  const badAdler = zz.slice();
  badAdler[badAdler.length - 1]! ^= 1;
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "truncated.gz",
      gz.subarray(0, gz.length - 100),
      /gzip stream is truncated: the input ends at byte \d+/,
    ],
    ["badcrc.gz", badCrc, /CRC-32 of the data does not match/],
    ["truncated.zz", zz.subarray(0, 5000), /zlib stream is truncated/],
    ["badadler.zz", badAdler, /Adler-32 of the data does not match/],
    [
      "plain.gz",
      new TextEncoder().encode("just text"),
      /found bytes 6a 75 73 at offset 0, expected a gzip/,
    ],
    ["empty.gz", new Uint8Array(0), /it is empty/],
  ];
  for (const [name, bytes, message] of cases) {
    await Deno.writeFile(`${dir.path}/${name}`, bytes);
    const result = await runMain(["-d", "-f", `${dir.path}/${name}`]);
    assert.equal(result.code, 1, name);
    assertOneLine(result.stderr, message);
    const left = (await listDir(dir.path)).filter((n) =>
      !/\.(gz|zz)$/.test(n) && n !== "data"
    );
    assert.deepEqual(left, [], `${name} left ${left}`);
  }
});

Deno.test("cli: unreadable input, unwritable output and bad usage give one line and the right code", async () => {
  await using dir = await tempDir();
  const missing = await runMain(["-d", "-f", `${dir.path}/missing.gz`]);
  assert.equal(missing.code, 1);
  assertOneLine(
    missing.stderr,
    /Cannot read '.*missing\.gz': no such file or directory/,
  );
  const directory = await runMain([
    "-c",
    "-f",
    dir.path,
    "-o",
    `${dir.path}/x.gz`,
  ]);
  assert.equal(directory.code, 1);
  assertOneLine(directory.stderr, /it is a directory, expected a file/);
  await Deno.writeTextFile(`${dir.path}/in`, "x");
  const noDir = await runMain([
    "-c",
    "-f",
    `${dir.path}/in`,
    "-o",
    `${dir.path}/no/such/dir/out.gz`,
  ]);
  assert.equal(noDir.code, 1);
  assertOneLine(
    noDir.stderr,
    /Cannot create a file in '.*no\/such\/dir': no such file or directory/,
  );
  const noName = await runMain(["-d", "-f", `${dir.path}/in`]);
  assert.equal(noName.code, 2);
  assertOneLine(noName.stderr, /expected a name ending in \.gz, \.zz or \.z/);
  const usage = await runMain(["--frobnicate"]);
  assert.equal(usage.code, 2);
  assertOneLine(usage.stderr, /Unknown option '--frobnicate'/);
  assert.deepEqual(await listDir(dir.path), ["in"]);
});

Deno.test("cli: a full disk fails cleanly and leaves no partial file", async () => {
  await using dir = await tempDir();
  const mount = `${dir.path}/small`;
  await Deno.mkdir(mount);
  await check("mount", [
    "-t",
    "tmpfs",
    "-o",
    "size=256k,mode=0700",
    "tmpfs",
    mount,
  ]);
  try {
    const input = `${dir.path}/random`;
    const data = new Uint8Array(1 << 20);
    for (let i = 0; i < data.length; i += 65536) {
      crypto.getRandomValues(data.subarray(i, i + 65536));
    }
    await Deno.writeFile(input, data);
    const result = await runMain(["-c", "-f", input, "-o", `${mount}/out.gz`]);
    assert.equal(result.code, 1);
    assertOneLine(
      result.stderr,
      /Cannot write '.*out\.gz': no space left on device/,
    );
    assert.deepEqual(await listDir(mount), []);
    // The store's limits leave the disk's last bytes alone: without them,
    // and with another program's file there, the disk fills, and the record
    // (written first) still tells.
    await Deno.writeFile(`${mount}/other`, data.subarray(0, 128 << 10));
    const capture = await runMain([
      "-c",
      "-p",
      mount,
      "--max-use",
      "100%",
      "--keep-free",
      "0",
      "-a",
      "full",
    ], { stdin: { path: input } });
    assert.equal(capture.code, 1);
    // The partial core is closed and removed as its write fails, so the
    // rate state written after it finds room: one line.
    assertOneLine(
      capture.stderr,
      /lost core: Cannot write '.*Core_.*_full\.gz': no space left on device: the partial core was removed, metadata only; metadata in .*Core_.*_full\.json$/,
    );
    await Deno.remove(`${mount}/other`);
    const left = await listDir(mount);
    assert.equal(left.length, 1, left.join(" "));
    assert.match(left[0]!, /^Core_\d+_\d+_full\.json$/);
    const record = JSON.parse(await Deno.readTextFile(`${mount}/${left[0]}`));
    assert.equal(record.archive, null);
    assert.equal(record.core_size, data.length);
    // Nobody reads a core_pattern helper's stderr: the kernel log has it too.
    const dmesg = text((await runTool("dmesg", [])).stdout);
    assert.ok(
      dmesg.includes(`lost core: Cannot write '${mount}/Core_`),
      "the lost core is in the kernel log",
    );
  } finally {
    await check("umount", [mount]);
  }
});

Deno.test("cli: a progress bar shows on a terminal for a long job, and never on a pipe", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/random`;
  // Text is slow to deflate at level 9, unlike random bytes.
  await check("sh", ["-c", `seq 1 6000000 > '${input}'`]);
  const onTerminal = await runTool("script", [
    "-qec",
    // One thread and the best level: slow enough for a bar on any machine.
    `${mainCommand().join(" ")} -c -j 1 -l 9 -f '${input}' -o '${input}.gz'`,
    "/dev/null",
  ]);
  assert.equal(onTerminal.code, 0);
  const screen = text(onTerminal.stdout);
  const size = ((await Deno.stat(input)).size / 1048576).toFixed(1);
  assert.match(
    screen,
    new RegExp(`\\[#{30}\\] 100% ${size} MiB of ${size} MiB`),
  );
  const onPipe = await runMain([
    "-d",
    "-f",
    `${input}.gz`,
    "-o",
    `${input}.out`,
  ]);
  assert.equal(onPipe.code, 0);
  assert.equal(onPipe.stderr, "");
  assert.equal(await fileDigest(`${input}.out`), await fileDigest(input));
});

Deno.test("cli: a read-only store falls back to /var/crash before reading the core", async () => {
  await using dir = await tempDir();
  await using store = await defaultStore();
  const mount = `${dir.path}/ro`;
  await Deno.mkdir(mount);
  await check("mount", [
    "-t",
    "tmpfs",
    "-o",
    "ro,size=64k,mode=0700",
    "tmpfs",
    mount,
  ]);
  try {
    const core = new TextEncoder().encode("core bytes\n".repeat(1000));
    const result = await store.runMain(
      ["-c", "-p", mount, "-a", store.marker],
      {
        stdin: core,
      },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /Cannot create files in store directory '.*\/ro': read-only file system; storing in '\/var\/crash' instead/,
    );
    const gz = (await store.files()).find((n) => n.endsWith(".gz"));
    assert.ok(gz);
    const out = await runTool("gzip", ["-dc", `${store.path}/${gz}`]);
    assert.deepEqual(out.stdout, core);
  } finally {
    await check("umount", [mount]);
  }
});

Deno.test("cli: an empty core is a record of metadata only; an empty file still makes a valid archive", async () => {
  await using dir = await tempDir();
  const captured = await runMain(["-c", "-p", dir.path, "-a", "empty"], {
    stdin: new Uint8Array(0),
  });
  assert.equal(captured.code, 0, captured.stderr);
  const names = await listDir(dir.path);
  assert.ok(!names.some((n) => n.endsWith(".gz")), names.join(" "));
  const json = names.find((n) => n.endsWith(".json"))!;
  const metadata = JSON.parse(await Deno.readTextFile(`${dir.path}/${json}`));
  assert.equal(metadata.core_size, 0);
  assert.equal(metadata.archive, null);
  assert.match(metadata.reason, /^empty core \(0 bytes\)/);
  await Deno.writeFile(`${dir.path}/empty`, new Uint8Array(0));
  for (const format of ["gz", "zlib"]) {
    const out = `${dir.path}/empty.${format}`;
    assert.equal(
      (await runMain([
        "-c",
        "-f",
        `${dir.path}/empty`,
        "-o",
        out,
        "-F",
        format,
      ])).code,
      0,
    );
    assert.equal(
      await pythonInflate(out, format === "gz" ? 31 : 15),
      "0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    const restored = await runMain(["-d", "-f", out, "-o", `${out}.out`]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal((await Deno.stat(`${out}.out`)).size, 0);
  }
});
