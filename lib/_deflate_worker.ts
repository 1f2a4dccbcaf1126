/**
 * Private worker of the parallel compressor: deflates one block on its own,
 * ending in a sync flush (byte-aligned, not final), so that blocks join into
 * one deflate stream, as pigz joins them.
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import { adler32 } from "./zlib.ts";
import { garbageMeter } from "./_memory.ts";

/** A block to deflate. */
export interface DeflateTask {
  id: number;
  data: Uint8Array;
  level: number;
  /** Also compute the block's Adler-32 (zlib format). */
  adler: boolean;
}

/** A deflated block, and the input's buffer handed back for reuse. */
export interface DeflateResult {
  id: number;
  deflated: Uint8Array;
  adler: number;
  data: ArrayBuffer;
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<DeflateTask>) => void) | null;
  postMessage(message: DeflateResult, transfer: Transferable[]): void;
};

const collect = garbageMeter();

scope.onmessage = (event) => {
  const { id, data, level, adler } = event.data;
  const out = deflateRawSync(data, {
    level,
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  // Hand over zlib's own buffer when the result fills it; else copy.
  const deflated =
    out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
      ? new Uint8Array(out.buffer, 0, out.byteLength)
      : new Uint8Array(out);
  const buffer = data.buffer as ArrayBuffer;
  scope.postMessage(
    { id, deflated, adler: adler ? adler32(1, data) : 0, data: buffer },
    [deflated.buffer as ArrayBuffer, buffer],
  );
  collect(data.length);
};
