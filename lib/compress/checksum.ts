/**
 * CRC-32 and Adler-32 arithmetic for data compressed in pieces: combining
 * the checksums of consecutive blocks, and extending a checksum over a run
 * of zeros without reading them (the zero-page fast path).
 *
 * The CRC-32 combination follows zlib's `crc32_combine` (multiplication
 * modulo the CRC polynomial by x^(8·n)); Adler-32's follows
 * `adler32_combine`.
 *
 * @module
 */

import { crc32 as nativeCrc32 } from "node:zlib";

/** The reflected CRC-32 polynomial. */
const POLY = 0xedb88320;
const BASE = 65521;

/** x^(2^k) modulo the polynomial, for k = 0..31. */
const X2N: number[] = (() => {
  const table = [1 << 30]; // x^1
  for (let k = 1; k < 32; k++) {
    table.push(multiplyModP(table[k - 1]!, table[k - 1]!));
  }
  return table;
})();

/** a·b modulo the CRC polynomial (reflected representation). */
function multiplyModP(a: number, b: number): number {
  let m = 1 << 31;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(n·2^k) modulo the polynomial. */
function xPowModP(n: number, k: number): number {
  let p = 1 << 31; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multiplyModP(X2N[k % 32]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p >>> 0;
}

/**
 * Updates a CRC-32 with bytes (native speed, from `node:zlib`).
 *
 * @example Usage
 * ```ts
 * import { crc32 } from "./checksum.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextEncoder().encode("123456789");
 * assert.equal(crc32(0, text), 0xcbf43926);
 * // In pieces, as a stream goes by.
 * assert.equal(crc32(crc32(0, text.subarray(0, 4)), text.subarray(4)), 0xcbf43926);
 * ```
 *
 * @param crc The CRC so far; 0 for no data.
 * @param bytes The next bytes.
 * @returns The CRC including them.
 */
export function crc32(crc: number, bytes: Uint8Array): number {
  return nativeCrc32(bytes, crc) >>> 0;
}

/**
 * The CRC-32 of A followed by B, from CRC(A), CRC(B) and B's length.
 *
 * @example Usage
 * ```ts
 * import { crc32, crc32Combine } from "./checksum.ts";
 * import assert from "node:assert/strict";
 *
 * const a = new Uint8Array([1, 2]), b = new Uint8Array([3]);
 * assert.equal(
 *   crc32Combine(crc32(0, a), crc32(0, b), b.length),
 *   crc32(0, new Uint8Array([1, 2, 3])),
 * );
 * ```
 *
 * @param crcA The CRC-32 of the first part.
 * @param crcB The CRC-32 of the second part.
 * @param lengthB The second part's length, in bytes.
 * @returns The CRC-32 of both, in order.
 */
export function crc32Combine(
  crcA: number,
  crcB: number,
  lengthB: number,
): number {
  return (multiplyModP(xPowModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}

/** CRC-32 of n zero bytes, by cached powers. */
const zeroCrcs = new Map<number, number>();
function crcOfZeros(n: number): number {
  let crc = zeroCrcs.get(n);
  if (crc === undefined) {
    // CRC(0^n) = CRC(0^(n-1)) extended: computed by doubling from one byte.
    crc = 0;
    let unit = crc32(0, new Uint8Array(1));
    let unitLength = 1;
    let rest = n;
    while (rest > 0) {
      if (rest % 2 === 1) crc = crc32Combine(crc, unit, unitLength);
      unit = crc32Combine(unit, unit, unitLength);
      unitLength *= 2;
      rest = Math.floor(rest / 2);
    }
    if (zeroCrcs.size < 16) zeroCrcs.set(n, crc);
  }
  return crc;
}

/**
 * Extends a CRC-32 over `n` zero bytes without reading them.
 *
 * @example Usage
 * ```ts
 * import { crc32, crc32Zeros } from "./checksum.ts";
 * import assert from "node:assert/strict";
 *
 * const page = new Uint8Array(4096);
 * page.set([1, 2, 3]);
 * // The data, then a page of zeros that need not be read.
 * assert.equal(crc32Zeros(crc32(0, page.subarray(0, 3)), 4093), crc32(0, page));
 * ```
 *
 * @param crc The CRC so far.
 * @param n How many zero bytes follow.
 * @returns The CRC including the zeros.
 */
export function crc32Zeros(crc: number, n: number): number {
  return n === 0 ? crc : crc32Combine(crc, crcOfZeros(n), n);
}

/**
 * The Adler-32 of A followed by B, from Adler(A), Adler(B) and B's length.
 *
 * @example Usage
 * ```ts
 * import { adler32Combine } from "./checksum.ts";
 * import { adler32 } from "./zlib.ts";
 * import assert from "node:assert/strict";
 *
 * const a = new Uint8Array([1, 2]), b = new Uint8Array([3]);
 * assert.equal(
 *   adler32Combine(adler32(1, a), adler32(1, b), b.length),
 *   adler32(1, new Uint8Array([1, 2, 3])),
 * );
 * ```
 *
 * @param adlerA The Adler-32 of the first part.
 * @param adlerB The Adler-32 of the second part.
 * @param lengthB The second part's length, in bytes.
 * @returns The Adler-32 of both, in order.
 */
export function adler32Combine(
  adlerA: number,
  adlerB: number,
  lengthB: number,
): number {
  const rem = lengthB % BASE;
  let sum1 = adlerA & 0xffff;
  let sum2 = (rem * sum1) % BASE;
  sum1 += (adlerB & 0xffff) + BASE - 1;
  sum2 += (adlerA >>> 16) + (adlerB >>> 16) + BASE - rem;
  if (sum1 >= BASE) sum1 -= BASE;
  if (sum1 >= BASE) sum1 -= BASE;
  if (sum2 >= BASE << 1) sum2 -= BASE << 1;
  if (sum2 >= BASE) sum2 -= BASE;
  return ((sum2 << 16) | sum1) >>> 0;
}

/**
 * Extends an Adler-32 over `n` zero bytes: the first sum stays, the second
 * grows by n times the first.
 *
 * @example Usage
 * ```ts
 * import { adler32Zeros } from "./checksum.ts";
 * import { adler32 } from "./zlib.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array(4096);
 * data.set([1, 2, 3]);
 * assert.equal(adler32Zeros(adler32(1, data.subarray(0, 3)), 4093), adler32(1, data));
 * ```
 *
 * @param adler The Adler-32 so far.
 * @param n How many zero bytes follow.
 * @returns The Adler-32 including the zeros.
 */
export function adler32Zeros(adler: number, n: number): number {
  const a = adler & 0xffff;
  const b = ((adler >>> 16) + (n % BASE) * a) % BASE;
  return ((b << 16) | a) >>> 0;
}
