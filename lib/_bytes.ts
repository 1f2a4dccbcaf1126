/**
 * Private byte helpers.
 *
 * @module
 */

/** The last bytes scanned, and a 32-bit view of their aligned part. */
let lastBytes: Uint8Array | undefined;
let lastWords: Int32Array<ArrayBufferLike> = new Int32Array(0);
let lastAligned = 0; // byte index in lastBytes where lastWords starts

/**
 * True when bytes `start` to `end` are all zero; reads 32-bit words where
 * the memory is aligned, which is several times faster than bytes. Scanning
 * the same array page by page reuses one view of it.
 */
export function isZero(
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): boolean {
  if (bytes !== lastBytes) {
    lastBytes = bytes;
    const skip = (4 - (bytes.byteOffset % 4)) % 4;
    lastAligned = Math.min(skip, bytes.length);
    lastWords = skip >= bytes.length ? new Int32Array(0) : new Int32Array(
      bytes.buffer,
      bytes.byteOffset + skip,
      Math.floor((bytes.length - skip) / 4),
    );
  }
  let i = start;
  // Bytes up to the first word boundary at or after `start`.
  const boundary = i <= lastAligned
    ? lastAligned
    : lastAligned + Math.ceil((i - lastAligned) / 4) * 4;
  for (const head = Math.min(end, boundary); i < head; i++) {
    if (bytes[i] !== 0) return false;
  }
  if (i < end) {
    const first = (i - lastAligned) / 4;
    const words = Math.min(Math.floor((end - i) / 4), lastWords.length - first);
    for (let w = first; w < first + words; w++) {
      if (lastWords[w] !== 0) return false;
    }
    i += Math.max(0, words) * 4;
  }
  for (; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Zeros that are never written to, shared by every caller of `zeros`. */
let shared = new Uint8Array(0);

/**
 * A view of `length` zero bytes from one shared buffer: no memory is
 * touched for them, and {@linkcode isSharedZeros} tells them apart without
 * reading them. The bytes must not be written to.
 */
export function zeros(length: number): Uint8Array {
  if (shared.length < length) shared = new Uint8Array(length);
  return shared.subarray(0, length);
}

/** True for views made by {@linkcode zeros}: all zero, no need to look. */
export function isSharedZeros(bytes: Uint8Array): boolean {
  return bytes.buffer === shared.buffer && bytes.length > 0;
}
