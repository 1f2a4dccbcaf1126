/**
 * Reading a byte stream into buffers the caller owns. BYOB reads fill
 * them directly where the stream allows it (files, stdin); other streams
 * are copied.
 *
 * @module
 */

import { concat } from "./bytes.ts";

/** Bytes per chunk from {@linkcode ByteSource.read}. */
const READ_SIZE = 1 << 20;

/** A stream read either into given buffers or chunk by chunk. */
export interface ByteSource {
  /**
   * Fills `view` as far as the input goes.
   *
   * @returns The filled part: shorter than `view` only at the end. A BYOB
   * read moves the memory into a new `ArrayBuffer`: use the returned view's
   * buffer, not the one given.
   */
  fill(view: Uint8Array): Promise<Uint8Array>;
  /** The next bytes, or undefined at the end. */
  read(): Promise<Uint8Array | undefined>;
  /**
   * One read, into `view` where the stream allows it (a pipe gives what it
   * holds): the returned view is then over `view`'s memory, moved. Else
   * the next bytes as they come. An empty view at the end (over the moved
   * memory, for a BYOB read).
   */
  readInto(view: Uint8Array): Promise<Uint8Array>;
  /** Puts bytes back in front of what is left. */
  unread(bytes: Uint8Array): void;
  /** Stops reading and cancels the stream. */
  cancel(reason?: unknown): Promise<void>;
  /** Releases the stream without cancelling it. */
  release(): void;
}

/**
 * Opens a stream for reading into the caller's buffers.
 *
 * @param input The stream; locked until released or cancelled.
 * @returns The source.
 */
export function openByteSource(
  input: ReadableStream<Uint8Array>,
): ByteSource {
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = input.getReader({ mode: "byob" });
  } catch {
    reader = input.getReader();
  }
  let rest: Uint8Array | undefined;
  let done = false;

  /** The next chunk from the stream itself. */
  const next = async (): Promise<Uint8Array | undefined> => {
    if (done) return undefined;
    if (byob !== undefined) {
      const result = await byob.read(new Uint8Array(READ_SIZE));
      if (result.done) done = true;
      return result.value?.length ? result.value : undefined;
    }
    const result = await reader!.read();
    if (result.done) done = true;
    return result.value;
  };

  /** What was put back first, then the stream's next chunk. */
  const read = async (): Promise<Uint8Array | undefined> => {
    if (rest !== undefined && rest.length > 0) {
      const bytes = rest;
      rest = undefined;
      return bytes;
    }
    return await next();
  };

  return {
    async fill(view) {
      const size = view.length;
      let filled = 0;
      if (rest !== undefined && rest.length > 0) {
        filled = Math.min(rest.length, size);
        view.set(rest.subarray(0, filled));
        rest = rest.subarray(filled);
      }
      while (filled < size && !done) {
        if (byob !== undefined) {
          const result = await byob.read(
            new Uint8Array(
              view.buffer,
              view.byteOffset + filled,
              size - filled,
            ),
          );
          if (result.value !== undefined) {
            view = new Uint8Array(
              result.value.buffer,
              result.value.byteOffset - filled,
              size,
            );
            filled += result.value.length;
          }
          if (result.done) done = true;
        } else {
          const chunk = await next();
          if (chunk === undefined) break;
          const take = Math.min(chunk.length, size - filled);
          view.set(chunk.subarray(0, take), filled);
          rest = chunk.subarray(take);
          filled += take;
        }
      }
      return view.subarray(0, filled);
    },
    read,
    async readInto(view) {
      if ((rest !== undefined && rest.length > 0) || byob === undefined) {
        return await read() ?? new Uint8Array(0);
      }
      const result = await byob.read(view);
      if (result.done) done = true;
      return result.value ?? new Uint8Array(0);
    },
    unread(bytes) {
      if (bytes.length === 0) return;
      if (rest === undefined || rest.length === 0) {
        rest = bytes;
        return;
      }
      rest = concat(bytes, rest);
    },
    async cancel(reason) {
      await (byob ?? reader)!.cancel(reason).catch(() => {});
    },
    release() {
      (byob ?? reader)!.releaseLock();
    },
  };
}
