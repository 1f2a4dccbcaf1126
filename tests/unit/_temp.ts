/**
 * Helpers of the fast tier: a temporary directory removed when disposed,
 * and deterministic bytes. Nothing here spawns a process.
 *
 * @module
 */

// The repository's root, a temporary directory removed when disposed, and
// a seeded generator: the same as the real-artifact tests'.
import { seededRandom as seeded } from "../_helpers.ts";

export {
  joinBytes,
  ROOT,
  spillDescriptors,
  tempDir,
  wholeEnd,
} from "../_helpers.ts";
export { seeded };

/** Random bytes, any length (getRandomValues takes at most 64 KiB a call). */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(length, at + 65536)));
  }
  return out;
}

/**
 * Text-like bytes that compress well but not trivially: words from a small
 * vocabulary picked by a seeded generator.
 */
export function textBytes(length: number, seed = 1): Uint8Array {
  const words = [
    "core",
    "dump",
    "signal",
    "segfault",
    "thread",
    "frame",
    "0x7ffd",
    "heap",
    "stack",
    "mmap",
  ];
  const random = seeded(seed);
  let text = "";
  while (text.length < length) {
    text += words[Math.floor(random() * words.length)]! +
      (random() < 0.1 ? "\n" : " ");
  }
  return new TextEncoder().encode(text.slice(0, length));
}

/** A stream of `bytes` in chunks of `chunk` bytes (the last may be short). */
export function chunked(
  bytes: Uint8Array,
  chunk = 100_000,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

/** Every byte of a stream, joined. */
export async function collect(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const part of stream) {
    parts.push(part);
    length += part.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Byte-wise equality with a short message instead of a huge diff. */
export function sameBytes(
  actual: Uint8Array,
  expected: Uint8Array,
): string | undefined {
  if (actual.length !== expected.length) {
    return `length ${actual.length}, expected ${expected.length}`;
  }
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      return `byte ${i} is ${actual[i]}, expected ${expected[i]}`;
    }
  }
  return undefined;
}
