import assert from "node:assert/strict";
import {
  concat,
  isSharedZeros,
  isZero,
  toHex,
  zeros,
} from "../../../lib/util/mod.ts";
import { seeded } from "../_temp.ts";

/** The obvious definition, byte by byte. */
function reference(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

Deno.test("isZero() agrees with a byte loop at every alignment, offset and length", () => {
  const backing = new Uint8Array(256);
  for (let shift = 0; shift < 4; shift++) {
    // Views that start off a 4-byte boundary of their buffer.
    const view = backing.subarray(shift, shift + 64);
    for (let at = -1; at < view.length; at++) {
      // A low bit, and a high one (a negative 32-bit word).
      for (const value of [1, 0x80]) {
        backing.fill(0);
        if (at >= 0) view[at] = value;
        for (let start = 0; start <= 12; start++) {
          for (const end of [start, start + 1, start + 5, 31, 32, 33, 64]) {
            if (end < start || end > view.length) continue;
            assert.equal(
              isZero(view, start, end),
              reference(view, start, end),
              `shift ${shift}, ${value} at ${at}, range ${start}-${end}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("isZero() defaults to the whole view, and finds a single bit anywhere", () => {
  const random = seeded(3);
  for (const length of [0, 1, 3, 4, 7, 4096, 65_537]) {
    const bytes = new Uint8Array(length);
    assert.equal(isZero(bytes), true, `zeros of ${length}`);
    if (length === 0) continue;
    const at = Math.floor(random() * length);
    bytes[at] = 1 << Math.floor(random() * 8);
    assert.equal(isZero(bytes), false, `one bit at ${at} of ${length}`);
    // Outside the range, the bit does not count.
    assert.equal(isZero(bytes, at + 1), true);
    assert.equal(isZero(bytes, 0, at), true);
  }
});

Deno.test("isZero() on long ranges finds a bit at every chunk edge and past the bytes it reads first, at any offset", () => {
  const chunk = 64 << 10;
  const backing = new Uint8Array(3 * chunk + 64);
  for (const shift of [0, 1, 3]) {
    for (
      const length of [
        4095,
        4096,
        4097,
        chunk - 1,
        chunk,
        chunk + 1,
        3 * chunk + 7,
      ]
    ) {
      const view = backing.subarray(shift, shift + length);
      for (const start of [0, 1, 5]) {
        const places = [
          -1,
          start,
          // The last byte read one by one, and the first compared natively.
          start + 63,
          start + 64,
          start + 4095,
          chunk - 1,
          chunk,
          chunk + start,
          2 * chunk + 1,
          length - 1,
        ].filter((at) => at < length);
        for (const at of places) {
          backing.fill(0);
          if (at >= 0) view[at] = 0x80;
          for (const end of [length, length - 1, at + 1, at]) {
            if (end < start || end > length) continue;
            assert.equal(
              isZero(view, start, end),
              reference(view, start, end),
              `shift ${shift}, length ${length}, bit at ${at}, range ${start}-${end}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("zeros() gives zero views that isSharedZeros() knows without reading", () => {
  for (const length of [1, 10, 4096, 1 << 20]) {
    const view = zeros(length);
    assert.equal(view.length, length);
    assert.equal(isZero(view), true);
    assert.equal(isSharedZeros(view), true, `zeros(${length})`);
  }
  // Zeros of one's own are zeros, but not the shared ones.
  assert.equal(isSharedZeros(new Uint8Array(16)), false);
  assert.equal(isSharedZeros(zeros(0)), false, "an empty view is no run");
  // A smaller request after a larger one shares the larger buffer.
  const large = zeros(1 << 20);
  const small = zeros(100);
  assert.equal(small.buffer, large.buffer);
});

Deno.test("concat() copies both arrays, views of larger buffers included", () => {
  const backing = new Uint8Array([9, 1, 2, 3, 9, 4, 5, 9]);
  const a = backing.subarray(1, 4);
  const b = backing.subarray(5, 7);
  const out = concat(a, b);
  assert.deepEqual(out, new Uint8Array([1, 2, 3, 4, 5]));
  assert.notEqual(out.buffer, backing.buffer, "a new array");
  backing.fill(0);
  assert.deepEqual(out, new Uint8Array([1, 2, 3, 4, 5]), "not a view");
  assert.deepEqual(
    concat(new Uint8Array(0), new Uint8Array(0)),
    new Uint8Array(0),
  );
  assert.deepEqual(
    concat(new Uint8Array([7]), new Uint8Array(0)),
    new Uint8Array([7]),
  );
});

Deno.test("toHex() writes two lowercase digits a byte, read back by parseInt", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const hex = toHex(all);
  assert.equal(hex.length, 512);
  assert.match(hex, /^[0-9a-f]+$/);
  for (let i = 0; i < 256; i++) {
    assert.equal(Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16), i);
  }
  assert.equal(toHex(new Uint8Array([0x1f, 0x8b, 0x08]), " "), "1f 8b 08");
  assert.equal(toHex(new Uint8Array(0), " "), "");
  assert.equal(toHex(new Uint8Array([0xab]), ":"), "ab");
});
