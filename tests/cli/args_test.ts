import assert from "node:assert/strict";
import {
  DEFAULT_DIRECTORY,
  parseCaptureArgs,
  parseCommand,
  UsageError,
} from "../../lib/cli/mod.ts";

Deno.test("parseCommand() accepts the original tool's usage lines", () => {
  assert.deepEqual(parseCommand(["-c", "-p", "/var/core", "-a", "prog"]), {
    kind: "capture",
    directory: "/var/core",
    defaultDirectory: false,
    argument: "prog",
    format: "gzip",
    facts: {},
    store: {},
    warnings: [],
  });
  assert.deepEqual(parseCommand(["-c"]), {
    kind: "capture",
    directory: DEFAULT_DIRECTORY,
    defaultDirectory: true,
    format: "gzip",
    facts: {},
    store: {},
    warnings: [],
  });
  assert.deepEqual(parseCommand(["-d", "-f", "in.gz", "-o", "out"]), {
    kind: "decompress",
    input: "in.gz",
    output: "out",
    force: false,
  });
  assert.deepEqual(parseCommand(["-h"]), { kind: "help" });
});

Deno.test("parseCommand() reads kernel facts by long and short names", () => {
  const long = parseCommand([
    "-c",
    "--pid",
    "42",
    "--uid",
    "1000",
    "--gid",
    "100",
    "--signal",
    "11",
    "--time",
    "1764000000",
    "--exe",
    "!usr!bin!prog",
    "--rlimit",
    "0",
    "--dumpable",
    "1",
    "--hostname",
    "box",
    "-a",
    "prog",
  ]);
  const short = parseCommand([
    "-c",
    "-P",
    "42",
    "-u",
    "1000",
    "-g",
    "100",
    "-s",
    "11",
    "-t",
    "1764000000",
    "-E",
    "!usr!bin!prog",
    "-r",
    "0",
    "-D",
    "1",
    "-H",
    "box",
    "-a",
    "prog",
  ]);
  assert.deepEqual(long, short);
  assert.equal(long.kind, "capture");
  if (long.kind !== "capture") return;
  assert.deepEqual(long.facts, {
    pid: 42,
    uid: 1000,
    gid: 100,
    signal: 11,
    time: 1764000000,
    exe: "!usr!bin!prog",
    rlimit: 0,
    dumpable: 1,
    hostname: "box",
  });
});

Deno.test("parseCaptureArgs() turns every problem into a warning, never an error", () => {
  const command = parseCaptureArgs([
    "-c",
    "--bogus",
    "-P",
    "x1",
    "--format",
    "zip",
    "--level",
    "12",
    "-p",
  ]);
  assert.equal(command.directory, DEFAULT_DIRECTORY);
  assert.equal(command.format, "gzip");
  assert.equal(command.level, undefined);
  assert.deepEqual(command.facts, {});
  assert.deepEqual(command.warnings, [
    "ignored unknown argument '--bogus'",
    "ignored option '-p': it needs a value",
    "ignored '--pid x1': expected a whole number",
    "Cannot use format 'zip': expected 'gz' or 'zlib'; using gzip",
    "Cannot use level '12': expected a whole number from 1 to 9; using the default level",
  ]);
});

Deno.test("parseCaptureArgs() joins a name the kernel split on spaces, and takes values starting with '-'", () => {
  const command = parseCaptureArgs([
    "-c",
    "-P",
    "7",
    "-a",
    "my",
    "odd",
    "prog",
  ]);
  assert.equal(command.argument, "my odd prog");
  assert.deepEqual(command.warnings, []);
  const dash = parseCaptureArgs(["-c", "-a", "-bash", "-E", "!bin!bash"]);
  assert.equal(dash.argument, "-bash");
  assert.equal(dash.facts.exe, "!bin!bash");
});

Deno.test("parseCommand() rejects malformed non-capture command lines with a UsageError", () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [[], /expected '-c' \(compress\) or '-d' \(decompress\)/],
    [["-c", "-d", "-f", "x"], /Cannot both compress and decompress/],
    [["-d", "-f", "x", "--level", "3"], /Cannot use '--level' with '-d'/],
    [["-c", "-f", "x", "--level", "0"], /expected a whole number from 1 to 9/],
    [["-c", "-f", "x", "--format", "xz"], /expected 'gz' or 'zlib'/],
    [["-c", "-f", "x", "-p", "/tmp"], /only applies to core capture/],
    [["-d", "-f", "x", "stray"], /unexpected argument 'stray'/],
    [["-k", "-d"], /the input is always kept/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseCommand(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, args.join(" "));
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("parseCommand() reads compress options with defaults", () => {
  assert.deepEqual(parseCommand(["-c", "-f", "big.log"]), {
    kind: "compress",
    input: "big.log",
    format: "gzip",
    force: false,
  });
  assert.deepEqual(
    parseCommand([
      "-c",
      "-f",
      "-",
      "-o",
      "-",
      "--format",
      "zlib",
      "-l",
      "1",
      "--force",
    ]),
    {
      kind: "compress",
      input: "-",
      output: "-",
      format: "zlib",
      level: 1,
      force: true,
    },
  );
});

Deno.test("parseCaptureArgs() reads store options, and a bad one is a warning with the default kept", () => {
  const command = parseCaptureArgs([
    "-c",
    "--max-use",
    "1G",
    "--keep-free",
    "10%",
    "--max-count",
    "20",
    "--max-size=64M",
    "--max-age",
    "7",
    "--rate",
    "3/30m",
    "--ignore-rlimit",
    "--mode",
    "0640",
    "--before",
    "/usr/sbin/wd pause",
    "--after",
    "/usr/sbin/wd resume",
  ]);
  assert.deepEqual(command.store, {
    maxUse: { bytes: 1024 ** 3 },
    keepFree: { percent: 10 },
    maxCount: 20,
    maxSize: 64 * 1024 ** 2,
    maxAgeMs: 7 * 86_400_000,
    rate: { count: 3, periodMs: 1_800_000 },
    ignoreRlimit: true,
    mode: 0o640,
    before: ["/usr/sbin/wd", "pause"],
    after: ["/usr/sbin/wd", "resume"],
  });
  assert.deepEqual(command.warnings, []);
  const bad = parseCaptureArgs([
    "-c",
    "--max-use",
    "lots",
    "--rate",
    "often",
    "--mode",
    "0666",
    "--before",
    "wd pause",
    "--max-size",
    "5%",
  ]);
  assert.deepEqual(bad.store, {});
  assert.equal(bad.warnings.length, 5);
  assert.match(
    bad.warnings[0]!,
    /ignored '--max-use lots': expected bytes with an optional K, M, G or T suffix/,
  );
  assert.match(
    bad.warnings[1]!,
    /ignored '--max-size 5%': expected bytes, not a percentage/,
  );
  assert.match(
    bad.warnings[2]!,
    /ignored '--rate often': expected COUNT\/PERIOD/,
  );
  assert.match(
    bad.warnings[3]!,
    /ignored '--mode 0666': expected at most owner read-write and group read/,
  );
  assert.match(
    bad.warnings[4]!,
    /ignored '--before wd pause': expected an absolute program path/,
  );
});

Deno.test("parseCommand() reads list, info, extract and debug", () => {
  assert.deepEqual(
    parseCommand(["list", "a.out", "-p", "/tmp/s", "--pid", "42", "--json"]),
    {
      kind: "list",
      directory: "/tmp/s",
      json: true,
      group: false,
      reverse: false,
      utc: false,
      legend: true,
      program: "a.out",
      pid: 42,
    },
  );
  // As coredumpctl matches: a number is a PID, a path an EXE.
  assert.deepEqual(
    [
      parseCommand(["list", "4242"]),
      parseCommand(["list", "/usr/bin/app", "--signal", "abrt", "-1"]),
    ].map((c) =>
      c.kind === "list" && [c.pid, c.exe, c.program, c.signal, c.last]
    ),
    [[4242, undefined, undefined, undefined, undefined], [
      undefined,
      "/usr/bin/app",
      undefined,
      6,
      1,
    ]],
  );
  assert.deepEqual(parseCommand(["extract", "a.out", "-o", "core"]), {
    kind: "extract",
    id: "a.out",
    directory: DEFAULT_DIRECTORY,
    output: "core",
    force: false,
  });
  assert.deepEqual(
    parseCommand(["debug", "a.out", "--debugger", "gdb -batch"]),
    {
      kind: "debug",
      id: "a.out",
      directory: DEFAULT_DIRECTORY,
      debugger: "gdb -batch",
      force: false,
    },
  );
  const since = parseCommand(["list", "--since", "2026-11-01"]);
  assert.equal(
    since.kind === "list" && since.since?.toISOString(),
    "2026-11-01T00:00:00.000Z",
  );
  // No -o: stdout (main refuses a terminal).
  assert.deepEqual(parseCommand(["extract", "a.out"]), {
    kind: "extract",
    id: "a.out",
    directory: DEFAULT_DIRECTORY,
    force: false,
  });
  assert.deepEqual(parseCommand(["dump", "a.out", "-o", "x"]), {
    kind: "extract",
    id: "a.out",
    directory: DEFAULT_DIRECTORY,
    force: false,
    output: "x",
  });
  assert.throws(
    () => parseCommand(["list", "--since", "yesterday-ish"]),
    /expected a date like 2026-11-26/,
  );
  assert.throws(() => parseCommand(["info"]), /expected one file, found 0/);
});

Deno.test("parseCommand() reads -j for both directions, and capture turns a bad -j into a warning", () => {
  assert.deepEqual(parseCommand(["-c", "-f", "big", "-j", "4"]), {
    kind: "compress",
    input: "big",
    format: "gzip",
    jobs: 4,
    force: false,
  });
  assert.throws(
    () => parseCommand(["-c", "-f", "big", "--jobs", "0"]),
    /Cannot use jobs '0': expected a whole number from 1 to 256/,
  );
  assert.deepEqual(parseCommand(["-d", "-f", "big.gz", "-j", "1"]), {
    kind: "decompress",
    input: "big.gz",
    jobs: 1,
    force: false,
  });
  assert.throws(
    () => parseCommand(["-d", "-f", "big.gz", "-j", "x"]),
    /Cannot use jobs 'x': expected a whole number from 1 to 256/,
  );
  const capture = parseCaptureArgs(["-c", "-j", "many"]);
  assert.equal(capture.jobs, undefined);
  assert.deepEqual(capture.warnings, [
    "Cannot use jobs 'many': expected a whole number from 1 to 256; using one per core",
  ]);
  assert.equal(parseCaptureArgs(["-c", "-j", "1"]).jobs, 1);
});
