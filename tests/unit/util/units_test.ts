import assert from "node:assert/strict";
import {
  formatBytes,
  parseDuration,
  parseRate,
  parseSize,
  resolveSize,
  UnitError,
} from "../../../lib/util/mod.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** Asserts that `parse(text)` throws a UnitError naming `text` and saying `expected`. */
function rejects(
  parse: (text: string) => unknown,
  text: string,
  expected: RegExp,
): void {
  assert.throws(
    () => parse(text),
    (error: unknown) => {
      assert.ok(error instanceof UnitError, `${text}: ${error}`);
      assert.equal(error.name, "UnitError");
      assert.ok(
        error.message.includes(`'${text}'`),
        `the message names the input: ${error.message}`,
      );
      assert.match(error.message, expected);
      assert.ok(!error.message.includes("\n"), "one line");
      return true;
    },
    `${JSON.stringify(text)} is rejected`,
  );
}

Deno.test("parseSize() reads bytes with binary suffixes, any case, with or without iB", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["512", 512],
    ["512B", 512],
    ["512K", 512 * KiB],
    ["512k", 512 * KiB],
    ["512KiB", 512 * KiB],
    ["512kb", 512 * KiB],
    ["512 K", 512 * KiB],
    ["1M", MiB],
    ["1.5G", 1.5 * GiB],
    ["1.5 GiB", 1.5 * GiB],
    ["2T", 2 * TiB],
    ["0.5K", 512],
    // Fractions of a byte are cut, never rounded up.
    ["1.9", 1],
    ["0.0001K", 0],
  ];
  for (const [text, bytes] of cases) {
    assert.deepEqual(parseSize(text), { bytes }, text);
  }
});

Deno.test("parseSize() reads percentages up to 100%", () => {
  for (const percent of [0, 1, 10, 12.5, 99.9, 100]) {
    assert.deepEqual(parseSize(`${percent}%`), { percent }, `${percent}%`);
  }
});

Deno.test("parseSize() rejects what is not a size, saying what it expected", () => {
  for (
    const text of [
      "",
      " ",
      "abc",
      "K",
      "-5",
      "+5",
      "5X",
      "5KK",
      "5P",
      "1e3",
      "0x10",
      " 5",
      "1.5.2G",
      ".5G",
      "5.G",
      "101%",
      "100.5%",
      "5 %",
      "%",
      "-1%",
      // Past Number.MAX_SAFE_INTEGER bytes.
      "99999999999T",
      "9007199254740993",
    ]
  ) {
    rejects(
      parseSize,
      text,
      /expected bytes with an optional K, M, G or T suffix .*or a percentage up to 100%/,
    );
  }
});

Deno.test("parseDuration() reads s, m, h, d and w; a bare number is days", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["90s", 90 * 1000],
    ["30m", 30 * 60 * 1000],
    ["1h", 60 * 60 * 1000],
    ["1.5h", 90 * 60 * 1000],
    ["12h", 12 * 3600 * 1000],
    ["14d", 14 * 24 * 3600 * 1000],
    ["14", 14 * 24 * 3600 * 1000],
    ["0.5", 12 * 3600 * 1000],
    ["2w", 14 * 24 * 3600 * 1000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

Deno.test("parseDuration() rejects what is not a duration, saying what it expected", () => {
  for (
    const text of ["", "h", "1y", "1 h", "-1h", "1hh", "1h30m", "1.h", "abc"]
  ) {
    rejects(
      parseDuration,
      text,
      /expected a number with s, m, h, d or w \(like 30m or 14d\)/,
    );
  }
});

Deno.test("parseRate() reads COUNT/PERIOD; a period without a number is one unit", () => {
  const cases: [string, number, number][] = [
    ["5/1h", 5, 3_600_000],
    ["5/h", 5, 3_600_000],
    ["10/30m", 10, 30 * 60_000],
    ["3/2d", 3, 2 * 86_400_000],
    ["1/s", 1, 1000],
    ["7/1w", 7, 7 * 86_400_000],
    // A bare number is days, as for parseDuration.
    ["2/3", 2, 3 * 86_400_000],
  ];
  for (const [text, count, periodMs] of cases) {
    assert.deepEqual(parseRate(text), { count, periodMs }, text);
  }
});

Deno.test("parseRate() rejects malformed rates and empty periods, saying what it expected", () => {
  for (
    const text of [
      "",
      "5",
      "5/",
      "/1h",
      "a/1h",
      "-5/1h",
      "5/0s",
      "5/0",
      "5/x",
      "5/1y",
      "5/-1h",
      "5//1h",
      "5/1h/2",
      "1.5/1h",
    ]
  ) {
    rejects(parseRate, text, /expected COUNT\/PERIOD \(like 5\/1h\)/);
  }
});

Deno.test("resolveSize() takes bytes as they are and percentages of the total, rounded down", () => {
  assert.equal(resolveSize({ bytes: 1234 }, 10), 1234);
  assert.equal(resolveSize({ percent: 10 }, 1000), 100);
  assert.equal(resolveSize({ percent: 10 }, 1009), 100);
  assert.equal(resolveSize({ percent: 100 }, 777), 777);
  assert.equal(resolveSize({ percent: 0 }, 777), 0);
  assert.equal(resolveSize(parseSize("15%"), 200 * GiB), 30 * GiB);
});

Deno.test("formatBytes() picks the largest binary unit, one decimal below 10", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [12 * KiB, "12 KiB"],
    [1.5 * GiB, "1.5 GiB"],
    [3 * TiB, "3.0 TiB"],
    // TiB is the largest unit.
    [2048 * TiB, "2048 TiB"],
  ];
  for (const [bytes, text] of cases) {
    assert.equal(formatBytes(bytes), text, String(bytes));
  }
});

Deno.test("formatBytes() output is read back by parseSize() within its rounding", () => {
  for (
    const bytes of [1, 999, 1024, 1500, 10 * KiB + 300, 5 * MiB + 1, 77 * GiB]
  ) {
    const text = formatBytes(bytes);
    const back = parseSize(text);
    assert.ok("bytes" in back, text);
    // One decimal below 10 of a unit, none above: 5% at most.
    assert.ok(
      Math.abs(back.bytes - bytes) <= bytes * 0.05,
      `${bytes} -> ${text} -> ${back.bytes}`,
    );
  }
});

Deno.test("parseSize() refuses a trailing newline, a bare iB and runs of spaces", () => {
  for (const text of ["5\n", "5iB", "5   K", "5K\n", " 5K"]) {
    assert.throws(
      () => parseSize(text),
      /Cannot read size/,
      JSON.stringify(text),
    );
  }
  assert.deepEqual(parseSize("5 KiB"), { bytes: 5 * 1024 });
  assert.deepEqual(parseSize("5B"), { bytes: 5 });
  assert.deepEqual(parseSize("1.5g"), { bytes: 1.5 * 1024 ** 3 });
});
