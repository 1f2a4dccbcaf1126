import assert from "node:assert/strict";
import {
  coreBaseName,
  MAX_NAME_PART_BYTES,
  sanitizeNamePart,
  timeStamp,
} from "../../../lib/store/mod.ts";
import { seeded } from "../_temp.ts";

const bytes = (text: string) => new TextEncoder().encode(text).length;

/** What every sanitised part must be, whatever came in. */
function assertSafe(part: string, input: string): void {
  const what = JSON.stringify(input);
  assert.match(part, /^[\p{L}\p{N}.+_-]*$/u, what);
  assert.doesNotMatch(part, /^[._-]|[._-]$/, what);
  assert.ok(!part.includes(".."), what);
  assert.ok(!part.includes("__"), what);
  assert.ok(bytes(part) <= MAX_NAME_PART_BYTES, what);
  assert.ok(part.isWellFormed(), what);
  assert.equal(sanitizeNamePart(part), part, `idempotent: ${what}`);
}

Deno.test("sanitizeNamePart() leaves a safe name part of any hostile string", () => {
  const alphabet = [
    "/",
    "\\",
    "\0",
    "\n",
    "\r",
    "\t",
    " ",
    ".",
    "..",
    "-",
    "_",
    "+",
    "!",
    "$",
    "`",
    "*",
    "?",
    "%",
    "a",
    "Z",
    "7",
    "é",
    "日",
    "٣",
    "😀",
    "\u202e",
    "\u200b",
    "\ufffd",
    "\ud800",
    "\u0301",
  ];
  const random = seeded(42);
  for (let i = 0; i < 2000; i++) {
    let input = "";
    const length = Math.floor(random() * 90);
    for (let j = 0; j < length; j++) {
      input += alphabet[Math.floor(random() * alphabet.length)];
    }
    assertSafe(sanitizeNamePart(input), input);
  }
});

Deno.test("sanitizeNamePart() keeps letters and digits of any script and names like a.out", () => {
  const cases: [string, string][] = [
    ["a.out", "a.out"],
    ["my-prog_2", "my-prog_2"],
    ["g++", "g++"],
    ["python3.12", "python3.12"],
    ["日本語", "日本語"],
    ["Ünïcödé", "Ünïcödé"],
    ["my prog", "my_prog"],
    ["../../etc/passwd", "etc_passwd"],
    ["a//b", "a_b"],
    ["a...b", "a.b"],
    ["...", ""],
    ["-rf", "rf"],
    ["__init__", "init"],
    ["tab\there", "tab_here"],
    ["", ""],
  ];
  for (const [input, expected] of cases) {
    assert.equal(sanitizeNamePart(input), expected, JSON.stringify(input));
  }
});

Deno.test("sanitizeNamePart() cuts at 64 bytes on a character boundary", () => {
  assert.equal(sanitizeNamePart("a".repeat(100)), "a".repeat(64));
  // Two bytes a character: 32 fit.
  assert.equal(sanitizeNamePart("é".repeat(40)), "é".repeat(32));
  // Three bytes a character: 21 fit (63 bytes), the 22nd would not.
  assert.equal(sanitizeNamePart("日".repeat(30)), "日".repeat(21));
  // What ends the cut part is trimmed like any end.
  assert.equal(sanitizeNamePart(`${"a".repeat(63)}.bbb`), "a".repeat(63));
});

Deno.test("timeStamp() is the UTC ISO time without separators", () => {
  const random = seeded(9);
  for (let i = 0; i < 200; i++) {
    const time = new Date(
      Math.floor(random() * Date.UTC(2100, 0, 1) / 1000) * 1000,
    );
    const iso = time.toISOString(); // 2026-11-26T09:05:07.000Z
    const expected = `${iso.slice(0, 10).replaceAll("-", "")}_${
      iso.slice(11, 19).replaceAll(":", "")
    }`;
    assert.equal(timeStamp(time), expected, iso);
  }
  // Milliseconds are dropped, not rounded.
  assert.equal(
    timeStamp(new Date(Date.UTC(2026, 10, 26, 9, 5, 7, 999))),
    "20261126_090507",
  );
});

Deno.test("coreBaseName() is Core_<stamp>, then _<part> when something usable is left", () => {
  const time = new Date(Date.UTC(2026, 10, 26, 9, 5, 7));
  const stamp = timeStamp(time);
  assert.equal(coreBaseName(time), `Core_${stamp}`);
  assert.equal(coreBaseName(time, ""), `Core_${stamp}`);
  assert.equal(coreBaseName(time, "///"), `Core_${stamp}`);
  assert.equal(coreBaseName(time, "a.out"), `Core_${stamp}_a.out`);
  const random = seeded(5);
  for (let i = 0; i < 200; i++) {
    const argument = Array.from(
      { length: Math.floor(random() * 40) },
      () => String.fromCodePoint(Math.floor(random() * 0x3000)),
    ).join("");
    const base = coreBaseName(time, argument);
    const part = sanitizeNamePart(argument);
    assert.equal(base, part === "" ? `Core_${stamp}` : `Core_${stamp}_${part}`);
    assert.ok(!base.includes("/"));
    assert.ok(bytes(base) <= "Core_YYYYMMDD_HHMMSS_".length + 64);
  }
});
