import assert from "node:assert/strict";
import {
  coreBaseName,
  MAX_NAME_PART_BYTES,
  sanitizeNamePart,
  timeStamp,
} from "../../lib/store/mod.ts";

Deno.test("sanitizeNamePart() leaves no separator, dot-dot or control byte", () => {
  const hostile = [
    "../../etc/passwd",
    "..",
    "/",
    "a/b",
    "!usr!bin!prog",
    "   ",
    "new\nline",
    "tab\there",
    "\x00\x01\x7f",
    "\ufffd\ufffd\ufffdjunk\ufffd",
    "-rf",
    ".hidden",
    "x".repeat(300),
    "ü".repeat(100),
  ];
  for (const value of hostile) {
    const part = sanitizeNamePart(value);
    assert.ok(!part.includes("/"), value);
    assert.ok(!part.includes(".."), value);
    assert.ok(!/^[.-]/.test(part), value);
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\x00-\x1f\x7f\s]/.test(part), value);
    assert.ok(
      new TextEncoder().encode(part).length <= MAX_NAME_PART_BYTES,
      value,
    );
  }
});

Deno.test("sanitizeNamePart() keeps ordinary program names readable", () => {
  assert.equal(sanitizeNamePart("a.out"), "a.out");
  assert.equal(sanitizeNamePart("python3.11"), "python3.11");
  assert.equal(sanitizeNamePart("my prog"), "my_prog");
  assert.equal(sanitizeNamePart("../../etc/passwd"), "etc_passwd");
  assert.equal(sanitizeNamePart("größe"), "größe");
  assert.equal(sanitizeNamePart("..."), "");
  assert.equal(sanitizeNamePart("ü".repeat(100)), "ü".repeat(32));
});

Deno.test("timeStamp() formats UTC as YYYYMMDD_HHMMSS", () => {
  assert.equal(
    timeStamp(new Date(Date.UTC(2026, 10, 26, 9, 5, 7))),
    "20261126_090507",
  );
  assert.equal(timeStamp(new Date(0)), "19700101_000000");
});

Deno.test("coreBaseName() omits the argument part when nothing usable is left", () => {
  const time = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.equal(coreBaseName(time), "Core_20260102_030405");
  assert.equal(coreBaseName(time, "prog"), "Core_20260102_030405_prog");
  assert.equal(coreBaseName(time, "//.."), "Core_20260102_030405");
});
