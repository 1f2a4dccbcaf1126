/**
 * The flag table (`lib/cli/flags.ts`) against the parsers that are made
 * from it (`lib/cli/args.ts`): every flag is accepted where it belongs,
 * under both its names, and nowhere else. The tables of expectations below
 * are keyed by flag name and must cover the flag table exactly, so that a
 * flag added without a test here fails.
 */
import assert from "node:assert/strict";
import {
  type CaptureCommand,
  type Command,
  DEFAULT_DIRECTORY,
  type Flag,
  flagNames,
  FLAGS,
  isBoolean,
  parseArgsOptions,
  parseCaptureArgs,
  parseCommand,
  parserFlags,
  type StoreOptions,
  SUBCOMMANDS,
  subcommandUsage,
  UsageError,
} from "../../../lib/cli/mod.ts";

const MiB = 1024 * 1024;
const DAY = 86_400_000;

/** Every spelling of a flag: `--name` and, when it has one, `-x`. */
function spellings(flag: Flag): string[] {
  return flag.short === undefined
    ? [`--${flag.name}`]
    : [`--${flag.name}`, `-${flag.short}`];
}

function flag(name: string): Flag {
  const found = parserFlags().find((f) => f.name === name);
  assert.ok(found, `--${name} is in FLAGS`);
  return found;
}

function assertCovers(table: object, names: string[], what: string): void {
  assert.deepEqual(
    Object.keys(table).sort(),
    [...names].sort(),
    `the test's table of ${what} names exactly the flags of that group`,
  );
}

function usageError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  });
}

/** Store flags: a value to give, and what lands in `.store`. */
const STORE_CASES: Record<
  string,
  { value?: string; store?: StoreOptions; configPath?: string }
> = {
  "max-use": { value: "1M", store: { maxUse: { bytes: MiB } } },
  "keep-free": { value: "5%", store: { keepFree: { percent: 5 } } },
  "max-count": { value: "7", store: { maxCount: 7 } },
  "max-records": { value: "12", store: { maxRecords: 12 } },
  "max-size": { value: "2M", store: { maxSize: 2 * MiB } },
  "spill-max": { value: "64M", store: { spillMax: 64 * MiB } },
  "max-age": { value: "3", store: { maxAgeMs: 3 * DAY } },
  rate: { value: "2/30m", store: { rate: { count: 2, periodMs: 1_800_000 } } },
  "ignore-rlimit": { store: { ignoreRlimit: true } },
  mode: { value: "0640", store: { mode: 0o640 } },
  before: {
    value: "/usr/bin/logger -t core",
    store: { before: ["/usr/bin/logger", "-t", "core"] },
  },
  after: { value: "/bin/echo done", store: { after: ["/bin/echo", "done"] } },
  "symbolize-online": {
    value: "https://a.example http://b.example/",
    store: { symbolizeOnline: ["https://a.example", "http://b.example"] },
  },
  "signature-skip": {
    value: "die, fatal_*",
    store: { signatureSkip: ["die", "fatal_*"] },
  },
  // Not a store limit: where more of them are read from.
  config: {
    value: "/etc/other.conf",
    store: {},
    configPath: "/etc/other.conf",
  },
};

/** Fact flags: a value as the kernel passes it, and the fact read. */
const FACT_CASES: Record<string, [string, number | string]> = {
  pid: ["4242", 4242],
  uid: ["1000", 1000],
  gid: ["100", 100],
  signal: ["11", 11],
  time: ["1764000000", 1_764_000_000],
  rlimit: ["0", 0],
  dumpable: ["2", 2],
  hostname: ["build-box", "build-box"],
  exe: ["/usr/bin/app", "/usr/bin/app"],
};

/** Main flags outside the groups: a command line using it, and its effect. */
const MAIN_CASES: Record<
  string,
  { args: (spelling: string) => string[]; check: (command: Command) => void }
> = {
  help: {
    args: (s) => [s],
    check: (c) => assert.deepEqual(c, { kind: "help" }),
  },
  version: {
    args: (s) => [s],
    check: (c) => assert.deepEqual(c, { kind: "version" }),
  },
  compress: {
    args: (s) => [s, "-f", "in"],
    check: (c) => {
      assert.equal(c.kind, "compress");
      assert.equal(c.kind === "compress" && c.input, "in");
    },
  },
  decompress: {
    args: (s) => [s, "-f", "in.gz"],
    check: (c) => {
      assert.equal(c.kind, "decompress");
      assert.equal(c.kind === "decompress" && c.input, "in.gz");
    },
  },
  path: {
    args: (s) => ["-c", s, "/srv/cores"],
    check: (c) => {
      assert.equal(c.kind, "capture");
      const capture = c as CaptureCommand;
      assert.equal(capture.directory, "/srv/cores");
      assert.equal(capture.defaultDirectory, false);
    },
  },
  argument: {
    args: (s) => ["-c", s, "prog"],
    check: (c) => assert.equal((c as CaptureCommand).argument, "prog"),
  },
  file: {
    args: (s) => ["-d", s, "data.gz"],
    check: (c) => assert.equal(c.kind === "decompress" && c.input, "data.gz"),
  },
  output: {
    args: (s) => ["-d", "-f", "data.gz", s, "data.out"],
    check: (c) => assert.equal(c.kind === "decompress" && c.output, "data.out"),
  },
  format: {
    args: (s) => ["-c", "-f", "in", s, "zlib"],
    check: (c) => assert.equal(c.kind === "compress" && c.format, "zlib"),
  },
  level: {
    args: (s) => ["-c", "-f", "in", s, "3"],
    check: (c) => assert.equal(c.kind === "compress" && c.level, 3),
  },
  jobs: {
    args: (s) => ["-d", "-f", "in.gz", s, "4"],
    check: (c) => assert.equal(c.kind === "decompress" && c.jobs, 4),
  },
  force: {
    args: (s) => ["-c", "-f", "in", s],
    check: (c) => assert.equal(c.kind === "compress" && c.force, true),
  },
};

Deno.test("FLAGS: names and short aliases are unique, and every value flag says what it takes", () => {
  const flags = parserFlags();
  const names = flags.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, "names");
  const shorts = flags.flatMap((f) => f.short === undefined ? [] : [f.short]);
  assert.equal(new Set(shorts).size, shorts.length, "short aliases");
  for (const f of flags) {
    assert.match(f.name, /^[a-z][a-z-]*$/, f.name);
    if (f.short !== undefined) assert.match(f.short, /^[A-Za-z]$/, f.name);
    if (f.group === "fact") {
      assert.ok(f.value !== undefined, `--${f.name} takes a value`);
      assert.match(f.specifier ?? "", /^%[A-Za-z]$/, `--${f.name}`);
    }
    if (f.rowWith !== undefined) {
      assert.ok(names.includes(f.rowWith), `--${f.name} rows with a flag`);
    }
  }
  // The table in parseArgs' shape says the same.
  const options = parseArgsOptions(FLAGS);
  assert.deepEqual(Object.keys(options).sort(), [...names].sort());
  for (const f of flags) {
    assert.equal(options[f.name]!.type, isBoolean(f) ? "boolean" : "string");
    assert.equal(options[f.name]!.short, f.short);
  }
});

Deno.test("parseCaptureArgs() puts every store flag of FLAGS in .store, under each spelling", () => {
  assertCovers(STORE_CASES, flagNames("store"), "store flags");
  for (const name of flagNames("store")) {
    const f = flag(name);
    const { value, store, configPath } = STORE_CASES[name]!;
    assert.equal(isBoolean(f), value === undefined, `--${name} takes a value`);
    const forms = value === undefined
      ? [[`--${name}`]]
      : [[`--${name}`, value], [`--${name}=${value}`]];
    for (const form of forms) {
      const command = parseCaptureArgs(["-c", ...form]);
      assert.deepEqual(command.warnings, [], form.join(" "));
      assert.deepEqual(command.store, store, form.join(" "));
      assert.equal(command.configPath, configPath, form.join(" "));
      // The strict parser hands a capture line to the same reader.
      assert.deepEqual(parseCommand(["-c", ...form]), command, form.join(" "));
    }
  }
});

Deno.test("parseCaptureArgs() puts every fact flag of FLAGS in .facts, short and long alike", () => {
  assertCovers(FACT_CASES, flagNames("fact"), "fact flags");
  for (const name of flagNames("fact")) {
    const f = flag(name);
    assert.ok(f.short !== undefined, `--${name} has a short alias`);
    const [value, fact] = FACT_CASES[name]!;
    const results = [
      parseCaptureArgs(["-c", `-${f.short}`, value]),
      parseCaptureArgs(["-c", `--${name}`, value]),
      parseCaptureArgs(["-c", `--${name}=${value}`]),
    ];
    for (const command of results) {
      assert.deepEqual(command.warnings, [], name);
      assert.deepEqual(command.facts, { [name]: fact }, name);
      assert.deepEqual(command.store, {}, name);
    }
  }
});

Deno.test("parseCaptureArgs() turns a non-number fact into a warning naming the flag", () => {
  for (const name of flagNames("fact")) {
    if (name === "hostname" || name === "exe") continue;
    const command = parseCaptureArgs(["-c", `--${name}`, "x1"]);
    assert.deepEqual(command.facts, {}, name);
    assert.equal(command.warnings.length, 1, name);
    assert.match(command.warnings[0]!, new RegExp(`'--${name} x1'`));
    assert.match(command.warnings[0]!, /expected a whole number/);
  }
  // The kernel's RLIM_INFINITY is no limit.
  assert.equal(
    parseCaptureArgs(["-c", "-r", "18446744073709551615"]).facts.rlimit,
    Number.POSITIVE_INFINITY,
  );
});

Deno.test("parseCommand() accepts every main flag of FLAGS where it belongs, short and long alike", () => {
  const main = parserFlags().filter((f) => f.group === undefined);
  assertCovers(MAIN_CASES, main.map((f) => f.name), "main flags");
  for (const f of main) {
    const { args, check } = MAIN_CASES[f.name]!;
    const results = spellings(f).map((s) => parseCommand(args(s)));
    for (const command of results) check(command);
    if (results.length === 2) {
      assert.deepEqual(results[1], results[0], `-${f.short} is --${f.name}`);
    }
  }
});

Deno.test("parseCaptureArgs() reads -F, -l and -j too, and ignores the other main flags with a warning", () => {
  const command = parseCaptureArgs(["-c", "-F", "zlib", "-l", "9", "-j", "2"]);
  assert.deepEqual(command.warnings, []);
  assert.equal(command.format, "zlib");
  assert.equal(command.level, 9);
  assert.equal(command.jobs, 2);
  // Booleans other than -c and --ignore-rlimit mean nothing in capture.
  const ignored = parseCaptureArgs(["-c", "--force"]);
  assert.equal(ignored.warnings.length, 1);
  assert.match(
    ignored.warnings[0]!,
    /ignored option '--force' in capture mode/,
  );
  // Without -p, the default store.
  const bare = parseCaptureArgs(["-c"]);
  assert.equal(bare.directory, DEFAULT_DIRECTORY);
  assert.equal(bare.defaultDirectory, true);
});

Deno.test("parseCommand() rejects store and fact flags outside capture, naming the flag", () => {
  for (const name of [...flagNames("store"), ...flagNames("fact")]) {
    const value = isBoolean(flag(name)) ? [] : ["1"];
    for (const head of [["-c", "-f", "in"], ["-d", "-f", "in.gz"]]) {
      usageError(
        () => parseCommand([...head, `--${name}`, ...value]),
        new RegExp(`'--${name}'.*only applies to core capture`),
      );
    }
  }
});

Deno.test("parseCommand() rejects unknown flags, stray arguments and contradictions with a UsageError", () => {
  usageError(() => parseCommand(["-d", "--no-such-flag"]), /no-such-flag/);
  usageError(() => parseCommand(["-d", "-f", "x", "-Q"]), /-Q/);
  usageError(() => parseCommand(["--bogus"]), /bogus/);
  usageError(
    () => parseCommand(["-d", "stray"]),
    /unexpected argument 'stray'/,
  );
  usageError(
    () => parseCommand(["-c", "-d", "-f", "x"]),
    /choose '-c' or '-d'/,
  );
  usageError(() => parseCommand([]), /expected '-c' \(compress\) or '-d'/);
  usageError(() => parseCommand(["-d", "-f", "x", "-l", "3"]), /'--level'/);
  usageError(() => parseCommand(["-c", "-f", "x", "-l", "0"]), /from 1 to 9/);
  usageError(() => parseCommand(["-c", "-f", "x", "-l", "10"]), /from 1 to 9/);
  usageError(() => parseCommand(["-c", "-f", "x", "-j", "0"]), /from 1 to 256/);
  usageError(
    () => parseCommand(["-c", "-f", "x", "-F", "xz"]),
    /'gz' or 'zlib'/,
  );
  usageError(() => parseCommand(["-c", "-f", "x", "-k"]), /always kept/);
  // A value flag at the end has no value.
  usageError(() => parseCommand(["-d", "-f"]), /Cannot parse the command line/);
  // In capture mode the same mistakes are warnings, never errors.
  const capture = parseCommand(["-c", "--no-such-flag", "-l", "10"]);
  assert.equal(capture.kind, "capture");
  assert.equal((capture as CaptureCommand).warnings.length, 2);
});

/** Subcommand flags: a value to give, and the property it sets. */
const SUBCOMMAND_VALUES: Record<string, { value?: string; key: string }> = {
  path: { value: "/srv/cores", key: "directory" },
  pid: { value: "42", key: "pid" },
  since: { value: "2026-11-26T09:00:00Z", key: "since" },
  json: { key: "json" },
  output: { value: "out.core", key: "output" },
  force: { key: "force" },
  debugger: { value: "/usr/bin/lldb", key: "debugger" },
  exe: { value: "/usr/bin/prog", key: "exe" },
  signature: { value: "0123abcd", key: "signature" },
  uid: { value: "1000", key: "uid" },
  signal: { value: "SIGSEGV", key: "signal" },
  until: { value: "2026-11-27T09:00:00Z", key: "until" },
  reverse: { key: "reverse" },
  newest: { key: "last" },
  lines: { value: "3", key: "last" },
  utc: { key: "utc" },
  "no-legend": { key: "legend" },
  symbolize: { key: "symbolize" },
  "debug-dir": { value: "/srv/debug", key: "debugDirs" },
  "debugger-arguments": {
    value: "-batch -ex 'thread apply all bt'",
    key: "debuggerArguments",
  },
  group: { key: "group" },
  uuid: { value: "0123abcd", key: "uuid" },
};

/** What a subcommand's flag is read as. */
function expectedValue(name: string, value: string | undefined): unknown {
  // -1 is the newest one; --no-legend turns the legend off.
  if (name === "newest") return 1;
  if (name === "no-legend") return false;
  if (value === undefined) return true;
  if (name === "pid" || name === "uid" || name === "lines") {
    return Number(value);
  }
  if (name === "since" || name === "until") return new Date(value);
  if (name === "signal") return 11;
  // A flag that may be repeated gives every value, in order.
  if (name === "debug-dir") return [value];
  if (name === "debugger-arguments") {
    return ["-batch", "-ex", "thread apply all bt"];
  }
  return value;
}

Deno.test("parseCommand() accepts each subcommand's flags from SUBCOMMANDS, short and long alike", () => {
  const all = new Set(SUBCOMMANDS.flatMap((s) => s.flags.map((f) => f.name)));
  assertCovers(SUBCOMMAND_VALUES, [...all], "subcommand flags");
  for (const subcommand of SUBCOMMANDS) {
    // Required flags come along with every other one.
    const required = subcommand.flags.filter((f) => f.required).flatMap((f) => [
      `--${f.name}`,
      SUBCOMMAND_VALUES[f.name]!.value!,
    ]);
    const bare = parseCommand([subcommand.name, "target", ...required]);
    // `dump` is `extract` by another name, as in coredumpctl.
    assert.equal(
      bare.kind,
      subcommand.name === "dump" ? "extract" : subcommand.name,
    );
    for (const f of subcommand.flags) {
      const { value, key } = SUBCOMMAND_VALUES[f.name]!;
      assert.equal(
        isBoolean(f),
        value === undefined,
        `${f.name} takes a value`,
      );
      const results = spellings(f).map((s) =>
        parseCommand([
          subcommand.name,
          "target",
          ...required,
          s,
          ...(value === undefined ? [] : [value]),
        ])
      );
      for (const command of results) {
        assert.equal(
          command.kind,
          subcommand.name === "dump" ? "extract" : subcommand.name,
        );
        assert.deepEqual(
          (command as unknown as Record<string, unknown>)[key],
          expectedValue(f.name, value),
          `${subcommand.name} --${f.name}`,
        );
      }
      if (results.length === 2) assert.deepEqual(results[1], results[0]);
    }
    assert.deepEqual(parseCommand([subcommand.name, "-h"]), {
      kind: "help",
      subcommand: subcommand.name,
    });
  }
});

Deno.test("parseCommand() rejects a flag of one subcommand given to another, and unknown ones", () => {
  const all = new Map(
    SUBCOMMANDS.flatMap((s) => s.flags.map((f) => [f.name, f] as const)),
  );
  for (const subcommand of SUBCOMMANDS) {
    const own = new Set(subcommand.flags.map((f) => f.name));
    for (const [name, f] of all) {
      if (own.has(name)) continue;
      const value = isBoolean(f) ? [] : ["v"];
      usageError(
        () => parseCommand([subcommand.name, "target", `--${name}`, ...value]),
        new RegExp(`Cannot parse '${subcommand.name}'`),
      );
    }
    usageError(
      () => parseCommand([subcommand.name, "target", "--no-such-flag"]),
      /no-such-flag/,
    );
  }
});

Deno.test("parseCommand() wants the operands and required flags the subcommand usage shows", () => {
  for (const subcommand of SUBCOMMANDS) {
    const usage = subcommandUsage(subcommand);
    assert.ok(usage.startsWith(subcommand.operand), usage);
    const optional = subcommand.operand.startsWith("[");
    if (!optional) {
      usageError(
        () => parseCommand([subcommand.name]),
        new RegExp(`found 0 \\(usage: gzcoredump ${subcommand.name} `),
      );
    }
    usageError(
      () => parseCommand([subcommand.name, "a", "b"]),
      /found 2/,
    );
    for (const f of subcommand.flags.filter((f) => f.required)) {
      // The usage shows it without brackets, and the parser wants it.
      assert.ok(usage.includes(` -${f.short ?? `-${f.name}`} ${f.value}`));
      assert.ok(!usage.includes(`[-${f.short ?? `-${f.name}`} ${f.value}]`));
      usageError(
        () => parseCommand([subcommand.name, "target"]),
        new RegExp(`expected '-${f.short ?? `-${f.name}`} ${f.value}'`),
      );
    }
  }
  usageError(() => parseCommand(["list", "--pid", "x"]), /whole number/);
  usageError(
    () => parseCommand(["list", "--since", "soon"]),
    /expected a date/,
  );
});

Deno.test("parseCaptureArgs() joins the words a split -a or -E left, and takes all after -- as the name", () => {
  // Before Linux 5.3 the kernel split %e and %E at spaces.
  const split = parseCaptureArgs([
    "-c",
    "-a",
    "my",
    "prog",
    "-E",
    "/opt/my",
    "app",
    "-P",
    "5",
  ]);
  assert.deepEqual(split.warnings, []);
  assert.equal(split.argument, "my prog");
  assert.deepEqual(split.facts, { exe: "/opt/my app", pid: 5 });
  // A stray word after any other flag's value is no part of it.
  const stray = parseCaptureArgs(["-c", "-P", "5", "extra"]);
  assert.deepEqual(stray.facts, { pid: 5 });
  assert.deepEqual(stray.warnings, ["ignored unknown argument 'extra'"]);
  // After --, nothing is an option.
  const last = parseCaptureArgs([
    "-c",
    "-p",
    "/srv",
    "--",
    "x",
    "--max-age=0",
    "-d",
  ]);
  assert.deepEqual(last.warnings, []);
  assert.equal(last.argument, "x --max-age=0 -d");
  assert.deepEqual(last.store, {});
  assert.equal(parseCommand(["-c", "--", "-d", "-f"]).kind, "capture");
});
