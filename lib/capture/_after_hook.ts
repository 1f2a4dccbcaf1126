/**
 * Private: phase 4 of a capture, the after hook: run with the archive's
 * path (or the record's), its failure written into the record.
 *
 * @module
 */

import { writeFileAtomic } from "../fs/mod.ts";
import { readSidecar, withStoreLock } from "../store/mod.ts";
import { runHook } from "./hooks.ts";
import type { Admitted } from "./_admit.ts";
import type { Described } from "./_describe.ts";
import type { Capture } from "./_prepare.ts";

/**
 * Runs `--after` once the record is final (not after a signal); a failure
 * is a warning and goes into the record.
 */
export async function afterHook(
  capture: Capture,
  admitted: Admitted,
  described: Described,
): Promise<void> {
  const { directory, warnings, options } = capture;
  const signal = options.signal;
  if (capture.store.after && !signal?.aborted) {
    const problem = await runHook(capture.store.after, [
      described.result.archive ?? admitted.reservation.path,
    ]);
    if (problem !== undefined) {
      warnings.push(problem);
      // The record says it too. The hook ran for a while: another capture
      // may have removed the core for room since, and its word stays.
      await withStoreLock(directory, async () => {
        const path = admitted.reservation.path;
        const current = await readSidecar(path);
        const next = current === undefined ||
            current.archive === described.archiveName
          ? described.final(true)
          : { ...current, warnings: [...(current.warnings ?? []), problem] };
        await writeFileAtomic(
          path,
          ReadableStream.from([
            new TextEncoder().encode(JSON.stringify(next, null, 2) + "\n"),
          ]),
          { mode: capture.mode, replace: true },
        );
      }, { warnings }).catch(() => {});
    }
  }
}
