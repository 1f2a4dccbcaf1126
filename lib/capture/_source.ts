/**
 * Private: the core as a capture reads it: counted, inspected, cut at its
 * limit, and let go at its end.
 *
 * @module
 */

import { CoreInspectorStream } from "../elf/mod.ts";
import { type ByteSource, errorText } from "../util/mod.ts";

/** Bytes asked for per read of the core; the pipe gives what it holds. */
export const READ_SIZE = 1 << 20;

/** The core's bytes as the capture takes them: counted, inspected, cut. */
export interface CoreSource {
  /**
   * The next bytes, read into `into` where the input allows it (the
   * returned view is then over `into`'s memory), or undefined at the end
   * (or the cut).
   */
  read(into?: Uint8Array): Promise<Uint8Array | undefined>;
  /** Most bytes taken; past it the core is cut and reading stops. */
  limit: number;
  /** True when the input was cut at the limit. */
  readonly cut: boolean;
  /** Stops reading (after the end hook): the crashed process is released. */
  stop(): Promise<void>;
  /**
   * At the end of a read into a caller's buffer: that memory, moved, as an
   * empty view (a byte stream's pending read is answered with it).
   */
  readonly endView: Uint8Array | undefined;
  /** Why reading stopped before the end of the input, if it failed. */
  readonly error: string | undefined;
}

/**
 * The core as the capture reads it. `onEnd` runs once, when the input ends
 * or reading stops, before the input is let go.
 */
export function coreSource(
  reader: ByteSource,
  first: Uint8Array | undefined,
  inspector: CoreInspectorStream,
  onEnd: () => Promise<void>,
): CoreSource {
  let pending = first;
  let seen = 0;
  let done = false;
  let cut = false;
  let ended: Promise<void> | undefined;
  /** A buffer for reads without one of the caller's (metadata only). */
  let scratch: Uint8Array | undefined;
  let endView: Uint8Array | undefined;
  let readError: string | undefined;
  const end = () => {
    done = true;
    ended ??= onEnd().finally(() => reader.cancel().catch(() => {}));
    return ended;
  };
  const source: CoreSource = {
    limit: Infinity,
    get cut() {
      return cut;
    },
    stop: end,
    get endView() {
      return endView;
    },
    get error() {
      return readError;
    },
    async read(into) {
      if (first === undefined) await end();
      while (!done) {
        let chunk = pending;
        pending = undefined;
        if (chunk === undefined) {
          const buffer = into ?? scratch ?? new Uint8Array(READ_SIZE);
          chunk = await reader.readInto(buffer).catch((error) => {
            readError = `reading the core failed after ${seen} bytes: ${
              errorText(error)
            }`;
            return new Uint8Array(0);
          });
          if (chunk.length === 0) {
            if (into !== undefined && chunk.buffer !== into.buffer) {
              endView = chunk;
            }
            await end();
            return undefined;
          }
          if (into === undefined) {
            scratch = new Uint8Array(chunk.buffer, 0, READ_SIZE);
          }
        } else if (into !== undefined && chunk.length <= into.length) {
          into.set(chunk);
          chunk = into.subarray(0, chunk.length);
        }
        const room = source.limit - seen;
        if (chunk.length > room) {
          chunk = chunk.subarray(0, Math.max(0, room));
          cut = true;
        }
        seen += chunk.length;
        inspector.inspect(chunk);
        if (cut) await end();
        if (chunk.length > 0) return chunk;
        // Cut at the read's first byte: the memory the read moved comes
        // back through endView, as at the end of the input (else the
        // caller answers a request whose memory is gone, and waits).
        if (into !== undefined && chunk.buffer !== into.buffer) {
          endView = chunk;
        }
      }
      return undefined;
    },
  };
  return source;
}
