/**
 * Private bridges between compression engines and web streams of bytes.
 *
 * @module
 */

import type { Transform } from "node:stream";

/** A transform of byte chunks, as `pipeThrough` takes it. */
export type BytePair = ReadableWritablePair<Uint8Array, Uint8Array>;

/**
 * Wraps a Node.js transform (a zlib engine) as a web stream pair that keeps
 * backpressure on both sides: a write waits for the engine's `drain`, and
 * the engine pauses while the reader is behind. (`Duplex.toWeb` accepts
 * writes without waiting, which would read a whole input into memory.)
 */
export function toWebTransform(engine: Transform): BytePair {
  let failure: unknown;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      engine.on("data", (chunk: Uint8Array) => {
        controller.enqueue(
          new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
        );
        if ((controller.desiredSize ?? 0) <= 0) engine.pause();
      });
      engine.on("end", () => controller.close());
      engine.on("error", (error: unknown) => {
        failure = error;
        controller.error(error);
      });
    },
    pull() {
      engine.resume();
    },
    cancel(reason) {
      engine.destroy(reason instanceof Error ? reason : undefined);
    },
  }, { highWaterMark: 4 });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<void>((resolve, reject) => {
        const onError = (error: unknown) => reject(error);
        engine.once("error", onError);
        const done = () => {
          engine.off("error", onError);
          resolve();
        };
        if (engine.write(chunk)) done();
        else engine.once("drain", done);
      });
    },
    close() {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<void>((resolve, reject) => {
        engine.once("error", reject);
        engine.end(() => resolve());
      });
    },
    abort(reason) {
      engine.destroy(reason instanceof Error ? reason : undefined);
    },
  });
  return { readable, writable };
}

/**
 * The web platform's `CompressionStream`, typed for the `Uint8Array` chunks
 * of file streams (its declared input type, `BufferSource`, excludes views
 * of a `SharedArrayBuffer`, which no stream here produces).
 */
export function platformCompressor(format: CompressionFormat): BytePair {
  return new CompressionStream(format) as unknown as BytePair;
}
