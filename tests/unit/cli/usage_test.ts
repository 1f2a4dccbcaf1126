/**
 * The help text and the README's tables (`lib/cli/usage.ts`) against the
 * flag table they are made from (`lib/cli/flags.ts`), both ways: every flag
 * is shown, and everything shown is a flag the parsers know.
 */
import assert from "node:assert/strict";
import { DEFAULT_PARALLEL_LEVEL } from "../../../lib/compress/mod.ts";
import {
  DEFAULT_DIRECTORY,
  FLAGS,
  optionTable,
  parseCommand,
  parserFlags,
  SUBCOMMANDS,
  subcommandUsage,
  usage,
} from "../../../lib/cli/mod.ts";

const TEXT = usage("9.8.7-test");
const LINES = TEXT.split("\n");

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `--name` as a whole option in the text, not a prefix of a longer one. */
function mentions(text: string, option: string): boolean {
  return new RegExp(`(^|[\\s\\[(,])${escape(option)}(?![A-Za-z0-9-])`, "m")
    .test(text);
}

/** A markdown row's cells, split on the pipes that are not escaped. */
function cells(row: string): string[] {
  assert.ok(row.startsWith("| ") && row.endsWith(" |"), row);
  return row.slice(2, -2).split(/(?<!\\) \| /);
}

Deno.test("usage() names the version and ends without a newline", () => {
  assert.equal(LINES[0], "gzcoredump version: 9.8.7-test");
  assert.ok(!TEXT.endsWith("\n"));
  assert.ok(
    !LINES.some((line) => line !== line.trimEnd()),
    "no trailing blanks",
  );
});

Deno.test("usage() mentions every flag of FLAGS, with its short alias and value", () => {
  for (const flag of parserFlags()) {
    assert.ok(mentions(TEXT, `--${flag.name}`), `--${flag.name}`);
    if (flag.short !== undefined) {
      assert.ok(
        TEXT.includes(`-${flag.short}, --${flag.name}`),
        `-${flag.short}, --${flag.name}`,
      );
    }
    if (flag.group === "fact") {
      assert.ok(
        TEXT.includes(`--${flag.name} ${flag.specifier}`),
        `--${flag.name} ${flag.specifier}`,
      );
    } else if (flag.value !== undefined && flag.help !== undefined) {
      assert.ok(
        TEXT.includes(`--${flag.name} ${flag.value}`),
        `--${flag.name} ${flag.value}`,
      );
    }
    if (flag.help !== undefined) {
      for (const line of flag.help.split("\n")) {
        assert.ok(TEXT.includes(line), `the help of --${flag.name}: ${line}`);
      }
    }
  }
  // The line of help only: `-- NAME`.
  for (const flag of FLAGS.filter((f) => f.helpOnly)) {
    assert.ok(TEXT.includes(`-- ${flag.value}`), `-- ${flag.value}`);
  }
});

Deno.test("usage() shows every subcommand with subcommandUsage() and its summary", () => {
  for (const subcommand of SUBCOMMANDS) {
    const head = `  gzcoredump ${subcommand.name} ${
      subcommandUsage(subcommand)
    }`;
    const line = LINES.find((l) => l.startsWith(head));
    assert.ok(line !== undefined, head);
    if (subcommand.summary !== undefined) {
      assert.ok(line.endsWith(` ${subcommand.summary}`), line);
    } else {
      assert.equal(line, head);
    }
    // Every flag of the subcommand is in its usage, bracketed unless required.
    for (const flag of subcommand.flags) {
      const name = flag.short === undefined
        ? `--${flag.name}`
        : `-${flag.short}`;
      const text = flag.value === undefined ? name : `${name} ${flag.value}`;
      assert.ok(
        line.includes(flag.required ? ` ${text}` : `[${text}]`),
        `${subcommand.name}: ${text}`,
      );
    }
  }
});

Deno.test("usage() shows only options the parsers know", () => {
  const known = new Set([
    ...parserFlags().map((f) => f.name),
    ...SUBCOMMANDS.flatMap((s) => s.flags.map((f) => f.name)),
  ]);
  const longs = [...TEXT.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) =>
    m[1]!
  );
  assert.ok(longs.length > 20, "long options found");
  for (const name of longs) assert.ok(known.has(name), `--${name} is a flag`);
  const shorts = new Set(
    [
      ...parserFlags().map((f) => f.short),
      ...SUBCOMMANDS.flatMap((s) => s.flags.map((f) => f.short)),
      "h",
    ].filter((s) => s !== undefined),
  );
  const found = [...TEXT.matchAll(/(?<![\w-])-([A-Za-z])(?![\w-])/g)].map((
    m,
  ) => m[1]!);
  assert.ok(found.length > 20, "short options found");
  for (const short of found) {
    assert.ok(shorts.has(short), `-${short} is a flag's alias`);
  }
});

Deno.test("usage()'s example core_pattern, expanded as the kernel would, parses without warnings", () => {
  const index = LINES.indexOf("Example core_pattern:");
  assert.ok(index > 0);
  const example = LINES[index + 1]!.trim();
  assert.match(example, /^\|\S+gzcoredump /);
  // What the kernel puts for each specifier: numbers, but %e is a name.
  const facts = FLAGS.filter((f) => f.specifier !== undefined);
  const expansion = new Map<string, string>(
    facts.map((f, i) => [f.specifier!, String(100 + i)]),
  );
  expansion.set("%e", "prog");
  const args = example.split(/\s+/).slice(1).map((arg) =>
    arg.replace(/%[A-Za-z]/g, (specifier) => {
      const value = expansion.get(specifier);
      assert.ok(value !== undefined, `the example's ${specifier} is known`);
      return value;
    })
  );
  const command = parseCommand(args);
  assert.equal(command.kind, "capture");
  if (command.kind !== "capture") return;
  assert.deepEqual(command.warnings, []);
  assert.equal(command.argument, "prog");
  assert.equal(command.defaultDirectory, false);
  // Each fact the example passes lands under the flag that has its specifier.
  for (const f of facts) {
    const given = example.includes(` ${f.specifier}`);
    const fact: unknown = (command.facts as Record<string, unknown>)[f.name];
    assert.equal(
      fact === undefined ? undefined : String(fact),
      given ? expansion.get(f.specifier!) : undefined,
      `--${f.name} ${f.specifier}`,
    );
  }
});

Deno.test("usage() puts continued help under the first line's words", () => {
  for (const flag of parserFlags()) {
    const help = flag.help;
    if (help === undefined || !help.includes("\n")) continue;
    const [first, second] = help.split("\n");
    const at = LINES.findIndex((l) => l.endsWith(first!));
    assert.ok(at > 0, `--${flag.name}`);
    const column = LINES[at]!.length - first!.length;
    assert.equal(LINES[at + 1], `${" ".repeat(column)}${second}`);
  }
});

Deno.test("optionTable('main') has one row per main flag, two cells each", () => {
  const rows = optionTable("main").split("\n");
  const flags = FLAGS.filter((f) => f.group === undefined && !f.helpOnly);
  assert.deepEqual(rows.slice(0, 2), ["| option | meaning |", "| --- | --- |"]);
  assert.equal(rows.length, flags.length + 2);
  flags.forEach((flag, i) => {
    const [label, meaning, ...rest] = cells(rows[i + 2]!);
    assert.deepEqual(rest, [], `--${flag.name}: two cells`);
    assert.ok(label!.includes(`\`--${flag.name}`), label);
    if (flag.short !== undefined) {
      assert.ok(label!.startsWith(`\`-${flag.short}\`, `), label);
    }
    const value = flag.docValue ?? flag.value;
    if (value !== undefined) {
      assert.ok(label!.includes(` ${value.replaceAll("|", "\\|")}\``), label);
    }
    assert.equal(
      meaning,
      (flag.doc ?? flag.help ?? "").replaceAll("|", "\\|"),
      `--${flag.name}`,
    );
  });
});

Deno.test("optionTable('store') has every store flag with its default, three cells a row", () => {
  const rows = optionTable("store").split("\n").slice(2);
  const store = FLAGS.filter((f) => f.group === "store");
  const primary = store.filter((f) => f.rowWith === undefined);
  assert.equal(rows.length, primary.length);
  primary.forEach((flag, i) => {
    const [label, defaults, what, ...rest] = cells(rows[i]!);
    assert.deepEqual(rest, [], `--${flag.name}: three cells`);
    assert.ok(label!.startsWith(`\`--${flag.name}`), label);
    assert.equal(defaults, (flag.default ?? "").replaceAll("|", "\\|"));
    assert.ok(what!.length > 0, `--${flag.name} says what it does`);
    for (const other of store.filter((f) => f.rowWith === flag.name)) {
      assert.ok(label!.includes(`\`--${other.name}`), `--${other.name}`);
    }
  });
  // Every store flag is on some row.
  for (const flag of store) {
    assert.ok(
      rows.some((row) => cells(row)[0]!.includes(`\`--${flag.name}`)),
      `--${flag.name}`,
    );
  }
});

Deno.test("optionTable('usage') is the usage lines of help, without the indent", () => {
  const lines = optionTable("usage").split("\n");
  assert.equal(lines.length, 3 + SUBCOMMANDS.length);
  for (const line of lines) {
    assert.ok(
      LINES.some((help) => help.startsWith(`  ${line}`)),
      `in help: ${line}`,
    );
  }
  for (const subcommand of SUBCOMMANDS) {
    assert.ok(
      lines.includes(
        `gzcoredump ${subcommand.name} ${subcommandUsage(subcommand)}`,
      ),
      subcommand.name,
    );
  }
});

Deno.test("the defaults help states for the level and the store are the ones applied", () => {
  const helpDefault = (name: string) => {
    const help = FLAGS.find((f) => f.name === name)?.help ?? "";
    const match = /\(default ([^);]+)/.exec(help);
    assert.ok(match, `--${name}'s help states a default`);
    return match[1]!;
  };
  assert.equal(
    Number(/^\d+/.exec(helpDefault("level"))![0]),
    DEFAULT_PARALLEL_LEVEL,
  );
  assert.equal(helpDefault("path"), DEFAULT_DIRECTORY);
  assert.ok(TEXT.includes(`-p ${DEFAULT_DIRECTORY} `), "the example uses it");
  // A capture line without -l or -p takes them.
  const capture = parseCommand(["-c"]);
  assert.ok(capture.kind === "capture");
  assert.equal(capture.directory, DEFAULT_DIRECTORY);
  assert.equal(capture.level, undefined, "left to the capture's default");
});
