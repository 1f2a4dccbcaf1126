/**
 * Private: phase 4 of a capture, the after hook: run with the archive's
 * path (or the record's), its failure written into the record.
 *
 * @module
 */

import { readSidecar, rewriteSidecar, withStoreLock } from "../store/mod.ts";
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
  if (!capture.store.after || options.signal?.aborted) return;
  const path = admitted.reservation.path;
  const problem = await runHook(capture.store.after, [
    described.result.archive ?? path,
  ]);
  if (problem === undefined) return;
  warnings.push(problem);
  // The record says it too. The hook ran for a while: another capture may
  // have removed the core for room since, and its word stays.
  await withStoreLock(directory, async () => {
    const current = await readSidecar(path);
    await rewriteSidecar(
      path,
      current === undefined || current.archive === described.archiveName
        ? described.final(true)
        : { ...current, warnings: [...(current.warnings ?? []), problem] },
    );
  }, { warnings }).catch(() => {});
}
