/**
 * Private worker of the parallel compressor: deflates one block on its own
 * (`_deflate_block.ts`). Started through `_worker_pool.ts`, which tells the
 * pool once this module is loaded. A block that fails is answered with the
 * error and its buffer, so the caller still has the block's bytes.
 *
 * @module
 */

import { deflateBlock } from "./_deflate_block.ts";
import { garbageMeter, setThreadNice } from "../util/mod.ts";

/** A block to deflate. */
export interface DeflateTask {
  id: number;
  data: Uint8Array;
  level: number;
  /** Also compute the block's Adler-32 (zlib format). */
  adler: boolean;
  /** The nice value this worker's thread takes, set at its first task. */
  nice?: number;
  /** Whether it will shrink, when the sender has asked already. */
  incompressible?: boolean;
}

/** A deflated block, and the input's buffer handed back for reuse. */
export interface DeflateResult {
  id: number;
  deflated: Uint8Array;
  adler: number;
  data: ArrayBuffer;
}

/** A block that could not be deflated, and its buffer handed back. */
export interface DeflateFailure {
  id: number;
  error: string;
  data: ArrayBuffer;
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<DeflateTask>) => void) | null;
  postMessage(
    message: DeflateResult | DeflateFailure,
    transfer: Transferable[],
  ): void;
};

// Minor collections every 8 MiB: the output and zlib's buffers die young.
// Every 16 MiB the pages they freed go back to the system: each deflate
// call's buffers leave this thread's C arena fragmented.
const collect = garbageMeter({
  threshold: 8 << 20,
  minor: true,
  trim: 16 << 20,
});

/** The nice value asked for, once set. */
let niced: number | undefined;

scope.onmessage = (event) => {
  const { id, data, level, adler, nice, incompressible } = event.data;
  // Read now: posting the answer moves the buffer, and data.length is 0.
  const length = data.length;
  if (nice !== undefined && nice !== niced) {
    niced = nice;
    setThreadNice(nice);
  }
  const buffer = data.buffer as ArrayBuffer;
  let result;
  try {
    result = deflateBlock(data, { level, adler, incompressible });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    scope.postMessage({ id, error: message, data: buffer }, [buffer]);
    return;
  }
  scope.postMessage(
    { id, deflated: result.deflated, adler: result.adler, data: buffer },
    [result.deflated.buffer as ArrayBuffer, buffer],
  );
  collect(length);
};
