import assert from "node:assert/strict";
import { errorText, printable } from "../../../lib/util/mod.ts";

Deno.test("printable() escapes every control character as \\xNN and keeps the rest", () => {
  for (let code = 0; code < 0x20; code++) {
    const expected = `\\x${code.toString(16).padStart(2, "0")}`;
    assert.equal(printable(`a${String.fromCharCode(code)}b`), `a${expected}b`);
  }
  assert.equal(printable("\x7f"), "\\x7f");
  for (
    const text of ["plain", "with space", "ünïcödé", "日本語", "a/b\\c", ""]
  ) {
    assert.equal(printable(text), text);
  }
  // The result never holds a control character, whatever came in.
  let all = "";
  for (let code = 0; code < 0x80; code++) all += String.fromCharCode(code);
  assert.ok(
    [...printable(all, 10_000)].every((c) => c >= " " && c !== "\x7f"),
  );
});

Deno.test("printable() cuts long values at max characters and marks the cut", () => {
  assert.equal(printable("x".repeat(80)), "x".repeat(80));
  assert.equal(printable("x".repeat(81)), `${"x".repeat(80)}...`);
  assert.equal(printable("y".repeat(500)), `${"y".repeat(80)}...`);
  assert.equal(printable("abcdef", 3), "abc...");
  assert.equal(printable("abc", 3), "abc");
  // Escapes count in the length: the output stays bounded.
  const escaped = printable("\n".repeat(1000), 20);
  assert.equal(escaped.length, 20 + "...".length);
});

Deno.test("errorText() gives the first line of any thrown value, without a final period", () => {
  assert.equal(errorText(new Error("Cannot read it.")), "Cannot read it");
  assert.equal(errorText(new Error("first line\nsecond line.")), "first line");
  assert.equal(errorText(new TypeError("bad type")), "bad type");
  assert.equal(errorText("a string."), "a string");
  assert.equal(errorText(42), "42");
  assert.equal(errorText(undefined), "undefined");
  assert.equal(errorText(new Error("")), "");
  // Only one period goes: an ellipsis keeps the rest.
  assert.equal(errorText(new Error("wait...")), "wait..");
  // A period inside the line stays.
  assert.equal(errorText(new Error("v1.2 failed")), "v1.2 failed");
});

// The cut once counted UTF-16 units and could split a surrogate pair.
Deno.test({
  name: "printable() cuts between characters, never inside a surrogate pair",
  fn() {
    const cut = printable("😀".repeat(50), 5);
    assert.ok(cut.isWellFormed(), JSON.stringify(cut));
    assert.ok(cut.endsWith("..."));
  },
});
