/**
 * Private: free space watched while an archive is written: under --keep-
 * free, the write stops.
 *
 * @module
 */

import { fileSystemSpace } from "../store/mod.ts";
import { Capture } from "./_prepare.ts";
import { KeepFreeError } from "./_stream.ts";

/** Free space is checked every this many bytes written. */
export const SPACE_CHECK_BYTES = 4 << 20;

/**
 * Counts what is written, and stops the capture when free space falls
 * under --keep-free.
 */
export function watch(
  capture: Capture,
  count: (bytes: number) => void,
): TransformStream<Uint8Array, Uint8Array> {
  const { directory, limits } = capture;
  let written = 0;
  let sinceCheck = 0;
  return new TransformStream({
    async transform(chunk, controller) {
      written += chunk.length;
      sinceCheck += chunk.length;
      count(written);
      if (sinceCheck >= SPACE_CHECK_BYTES) {
        sinceCheck = 0;
        const { free } = await fileSystemSpace(directory);
        if (free < limits.keepFree) {
          throw new KeepFreeError(
            `free space fell to ${free} bytes, under --keep-free ${limits.keepFree}, while storing`,
          );
        }
      }
      controller.enqueue(chunk);
    },
  });
}
