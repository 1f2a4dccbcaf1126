import assert from "node:assert/strict";
import { compact } from "../../../lib/util/mod.ts";

Deno.test("compact() drops undefined properties and keeps every other falsy value", () => {
  const input = {
    a: 1,
    b: undefined,
    c: null,
    d: 0,
    e: false,
    f: "",
    g: Number.NaN,
    h: [undefined],
    i: { nested: undefined },
  };
  const out = compact(input);
  assert.deepEqual(out, {
    a: 1,
    c: null,
    d: 0,
    e: false,
    f: "",
    g: Number.NaN,
    h: [undefined],
    i: { nested: undefined },
  });
  assert.equal(Object.hasOwn(out, "b"), false, "absent, not undefined");
  // Nested objects are the same objects, untouched.
  assert.equal(out.i, input.i);
});

Deno.test("compact() returns a copy and leaves its argument as it was", () => {
  const input: { level?: number | undefined; format: string } = {
    level: undefined,
    format: "gzip",
  };
  const out = compact(input);
  assert.notEqual(out, input);
  assert.equal(Object.hasOwn(input, "level"), true);
  assert.deepEqual(Object.keys(out), ["format"]);
  assert.deepEqual(compact({}), {});
  assert.deepEqual(compact({ x: undefined }), {});
});

Deno.test("compact() spreads into options so that absent ones take their defaults", () => {
  const defaults = { level: 5, jobs: 2, format: "gzip" };
  const given: { level?: number | undefined; jobs?: number | undefined } = {
    level: undefined,
    jobs: 4,
  };
  // A plain spread would set level to undefined.
  assert.deepEqual({ ...defaults, ...compact(given) }, {
    level: 5,
    jobs: 4,
    format: "gzip",
  });
  assert.equal({ ...defaults, ...given }.level, undefined);
});
