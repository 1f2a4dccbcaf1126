/**
 * Checksums against independent references: a bitwise CRC-32 and a
 * byte-by-byte Adler-32 written here, node:zlib's crc32, and the Adler-32
 * that node:zlib's deflateSync writes in its zlib trailer.
 */
import assert from "node:assert/strict";
import { crc32 as zlibCrc32, deflateSync } from "node:zlib";
import {
  adler32,
  adler32Combine,
  adler32Zeros,
  crc32,
  crc32Combine,
  crc32Zeros,
} from "../../../lib/compress/mod.ts";
import { joinBytes, seeded } from "../_temp.ts";

/** CRC-32 (reflected, polynomial 0xEDB88320) one bit at a time. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) {
      crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    }
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Adler-32 by its definition, reducing after every byte. */
function referenceAdler32(bytes: Uint8Array, start = 1): number {
  let a = start & 0xffff;
  let b = start >>> 16;
  for (const byte of bytes) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** node:zlib's crc32, unsigned. */
function nodeCrc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes) >>> 0;
}

/** The Adler-32 node:zlib writes after the deflate data of a zlib stream. */
function nodeAdler32(bytes: Uint8Array): number {
  const zlib = deflateSync(bytes, { level: 1 });
  return new DataView(zlib.buffer, zlib.byteOffset + zlib.length - 4, 4)
    .getUint32(0, false);
}

function randomBytes(length: number, seed: number, zeroShare = 0): Uint8Array {
  const random = seeded(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = random() < zeroShare ? 0 : Math.floor(random() * 256);
  }
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32() and adler32() give the published check values", () => {
  assert.equal(crc32(0, text("123456789")), 0xcbf43926);
  assert.equal(referenceCrc32(text("123456789")), 0xcbf43926);
  assert.equal(crc32(0, new Uint8Array(0)), 0);
  assert.equal(adler32(1, text("Wikipedia")), 0x11e60398);
  assert.equal(referenceAdler32(text("Wikipedia")), 0x11e60398);
  assert.equal(adler32(1, new Uint8Array(0)), 1);
});

Deno.test("crc32() agrees with a bitwise CRC-32, whole and updated piece by piece", () => {
  for (const length of [1, 2, 3, 15, 16, 17, 255, 4096, 10_007]) {
    const data = randomBytes(length, length);
    const expected = referenceCrc32(data);
    assert.equal(crc32(0, data), expected, `length ${length}`);
    const cut = Math.floor(length / 3);
    assert.equal(
      crc32(crc32(0, data.subarray(0, cut)), data.subarray(cut)),
      expected,
      `length ${length} in two`,
    );
  }
});

Deno.test("adler32() agrees with the definition and with node:zlib's trailer, past NMAX and on 0xff", () => {
  for (
    const data of [
      randomBytes(1, 1),
      randomBytes(5551, 2),
      randomBytes(5552, 3),
      randomBytes(5553, 4),
      randomBytes(100_000, 5),
      new Uint8Array(200_000).fill(0xff),
      new Uint8Array(70_000),
    ]
  ) {
    const expected = referenceAdler32(data);
    assert.equal(adler32(1, data), expected, `length ${data.length}`);
    assert.equal(nodeAdler32(data), expected, `node, length ${data.length}`);
    // Updated in uneven pieces.
    let adler = 1;
    for (let at = 0; at < data.length; at += 7777) {
      adler = adler32(adler, data.subarray(at, at + 7777));
    }
    assert.equal(adler, expected, `pieces, length ${data.length}`);
  }
});

Deno.test("crc32Combine() gives the CRC-32 of A then B, as node:zlib computes the whole", () => {
  const data = randomBytes(3_000_000, 11, 0.3);
  const whole = nodeCrc32(data);
  for (
    const cuts of [
      [0],
      [1],
      [data.length - 1],
      [data.length],
      [65536, 1 << 20],
      [1, 2, 3, 999_999, 2_999_999],
    ]
  ) {
    let crc = 0;
    let start = 0;
    for (const end of [...cuts, data.length]) {
      const block = data.subarray(start, end);
      crc = crc32Combine(crc, nodeCrc32(block), block.length);
      start = end;
    }
    assert.equal(crc, whole, `cuts ${cuts}`);
  }
  // An empty B changes nothing.
  assert.equal(crc32Combine(whole, 0, 0), whole);
  // Small cases against the bitwise reference.
  const random = seeded(12);
  for (let i = 0; i < 200; i++) {
    const a = randomBytes(Math.floor(random() * 40), i);
    const b = randomBytes(Math.floor(random() * 40), i + 1000);
    assert.equal(
      crc32Combine(referenceCrc32(a), referenceCrc32(b), b.length),
      referenceCrc32(joinBytes([a, b])),
      `${a.length} + ${b.length}`,
    );
  }
});

Deno.test("crc32Zeros() extends a CRC-32 over zeros as if they were read", () => {
  const head = text("core header");
  const start = crc32(0, head);
  // More than 16 lengths: past the cache of zero CRCs too.
  const lengths = [0, 1, 2, 3, 4, 7, 8, 100, 4095, 4096, 65521, 65536];
  for (let i = 0; i < 8; i++) lengths.push(100_003 * (i + 1));
  lengths.push(1 << 20, 5_000_003);
  for (const n of [...lengths, ...lengths]) {
    assert.equal(
      crc32Zeros(start, n),
      nodeCrc32(joinBytes([head, new Uint8Array(n)])),
      `${n} zeros`,
    );
  }
  assert.equal(crc32Zeros(0, 1), nodeCrc32(new Uint8Array(1)));
});

Deno.test("crc32Zeros() and crc32Combine() stay consistent past 2^32 bytes", () => {
  // Too many zeros to read: the arithmetic must agree with itself.
  const start = crc32(0, text("x"));
  const big = [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 3e9];
  for (const a of big) {
    for (const b of [1, 4096, 2 ** 31 + 7]) {
      const joined = crc32Zeros(crc32Zeros(start, a), b);
      assert.equal(joined, crc32Zeros(start, a + b), `${a} + ${b}`);
      assert.equal(
        crc32Combine(start, crc32Zeros(0, a + b), a + b),
        joined,
        `combine ${a} + ${b}`,
      );
    }
  }
});

Deno.test("adler32Combine() gives the Adler-32 of A then B, lengths past the modulus included", () => {
  const data = randomBytes(400_000, 21, 0.2);
  const whole = referenceAdler32(data);
  for (const cut of [0, 1, 65520, 65521, 65522, 131_042, 399_999, 400_000]) {
    const a = data.subarray(0, cut);
    const b = data.subarray(cut);
    assert.equal(
      adler32Combine(adler32(1, a), adler32(1, b), b.length),
      whole,
      `cut at ${cut}`,
    );
  }
  // Sums near the modulus, from all-0xff data.
  const ff = new Uint8Array(3 * 65521 + 17).fill(0xff);
  for (const cut of [1, 65521, 100_000]) {
    assert.equal(
      adler32Combine(
        adler32(1, ff.subarray(0, cut)),
        adler32(1, ff.subarray(cut)),
        ff.length - cut,
      ),
      referenceAdler32(ff),
    );
  }
  assert.equal(
    adler32Combine(whole, 1, 0),
    whole,
    "an empty B changes nothing",
  );
});

Deno.test("adler32Zeros() extends an Adler-32 over zeros as if they were read", () => {
  const head = randomBytes(1000, 31);
  const start = adler32(1, head);
  for (const n of [0, 1, 2, 65520, 65521, 65522, 1 << 20, 3_000_017]) {
    assert.equal(
      adler32Zeros(start, n),
      referenceAdler32(joinBytes([head, new Uint8Array(n)])),
      `${n} zeros`,
    );
  }
  assert.equal(adler32Zeros(1, 10), referenceAdler32(new Uint8Array(10)));
});
