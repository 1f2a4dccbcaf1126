/**
 * Private: deflating one block of the parallel compressor, the same code in
 * a worker (`_deflate_worker.ts`) and in the main thread (`inline`, or the
 * fallback when the workers fail), so that both write the same bytes.
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import { adler32 } from "./zlib.ts";

/** A deflated block. */
export interface DeflatedBlock {
  /** Raw deflate data ending in a sync flush; owns its whole buffer. */
  deflated: Uint8Array;
  /** The block's Adler-32 when asked for, else 0. */
  adler: number;
}

/**
 * Deflates a block on its own, ending in a sync flush (byte-aligned, not
 * final), so that blocks join into one deflate stream, as pigz joins them.
 *
 * @param data The block.
 * @param level Deflate level 1 to 9.
 * @param adler Also compute the block's Adler-32 (zlib format).
 * @returns The deflate data, in a buffer of its own (transferable).
 */
export function deflateBlock(
  data: Uint8Array,
  level: number,
  adler: boolean,
): DeflatedBlock {
  const out = deflateRawSync(data, {
    level,
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  // Hand over zlib's own buffer when the result fills it; else copy.
  const deflated =
    out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
      ? new Uint8Array(out.buffer, 0, out.byteLength)
      : new Uint8Array(out);
  return { deflated, adler: adler ? adler32(1, data) : 0 };
}
