/**
 * Private worker of the parallel compressor: deflates one block with the
 * previous 32 KiB as dictionary, ending in a sync flush (byte-aligned, not
 * final), so that blocks join into one deflate stream, as pigz joins them.
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import { adler32 } from "./zlib.ts";

/** A block to deflate. */
export interface DeflateTask {
  id: number;
  data: Uint8Array;
  dictionary: Uint8Array | undefined;
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

scope.onmessage = (event) => {
  const { id, data, dictionary, level, adler } = event.data;
  const out = deflateRawSync(data, {
    level,
    finishFlush: constants.Z_SYNC_FLUSH,
    // One output buffer (deflate never grows data by more than ~0.1%).
    chunkSize: data.length + (data.length >> 8) + 1024,
    ...(dictionary === undefined ? {} : { dictionary }),
  });
  const deflated = new Uint8Array(out); // A copy that owns its buffer.
  const buffer = data.buffer as ArrayBuffer;
  scope.postMessage(
    { id, deflated, adler: adler ? adler32(1, data) : 0, data: buffer },
    [deflated.buffer as ArrayBuffer, buffer],
  );
};
