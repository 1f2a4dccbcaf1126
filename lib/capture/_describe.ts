/**
 * Private: phase 3 of a capture: who crashed, the `.uuid` copy, the final
 * record, the rate count of a core that was not stored, and the after hook.
 *
 * @module
 */

import { basename, join } from "node:path";
import { writeFileAtomic } from "../fs/mod.ts";
import type { CoreReport } from "../elf/mod.ts";
import type { Backtrace, CrashSignature } from "../unwind/mod.ts";
import {
  buildMetadata,
  type CaptureRecord,
  type MetadataSources,
  readRateState,
  type ThreadEntry,
  withStoreLock,
  writeRateState,
} from "../store/mod.ts";
import { compact, errorText } from "../util/mod.ts";
import type { CaptureResult } from "./capture.ts";
import { Capture } from "./_prepare.ts";
import { Admitted } from "./_admit.ts";
import { Outcome } from "./_stream.ts";
import { hostnameSource, Identity } from "./_identify.ts";

/** The sidecar's record from what is known so far. */
export function metadataOf(
  capture: Capture,
  parts: {
    archive: string | null;
    reason: string | undefined;
    capture: CaptureRecord;
    report: CoreReport;
    compressedSize?: number | null;
    identity?: Identity;
    backtrace?: Backtrace | undefined;
    named?: ThreadEntry[] | undefined;
    signature?: CrashSignature | undefined;
    uuidFile?: string;
    pressedBlocks?: number | undefined;
    spilledBlocks?: number | undefined;
  },
): ReturnType<typeof buildMetadata> {
  const sources: MetadataSources = {
    time: capture.time,
    report: parts.report,
    facts: capture.facts,
    ...parts.identity,
    ...compact({ argument: capture.options.argument }),
    stored: {
      archive: parts.archive,
      format: capture.format,
      level: capture.level,
      pressedBlocks: parts.pressedBlocks,
      spilledBlocks: parts.spilledBlocks,
      compressedSize: parts.compressedSize ?? null,
      durationMs: Math.round(performance.now() - capture.started),
      uuidFile: parts.uuidFile,
      reason: parts.reason,
    },
    ...hostnameSource(capture.facts),
    capture: parts.capture,
    warnings: capture.warnings,
    ...compact({
      backtrace: parts.backtrace,
      named: parts.named,
      signature: parts.signature,
    }),
  };
  return buildMetadata(sources);
}

/**
 * Phase 3: who crashed, the `.uuid` copy, the final record, the rate
 * count of a core that was not stored after all, and the after hook.
 */
/** What {@linkcode describe} wrote, for the after hook. */
export interface Described {
  /** The capture's result. */
  result: CaptureResult;
  /** The final record, with or without the core's details. */
  final: (withDetails: boolean) => ReturnType<typeof metadataOf>;
  /** The archive's file name, null when only metadata was kept. */
  archiveName: string | null;
}

export async function describe(
  capture: Capture,
  admitted: Admitted,
  outcome: Outcome & {
    report: CoreReport;
    identity: Identity;
    backtrace: Backtrace | undefined;
    named: ThreadEntry[] | undefined;
    signature: CrashSignature | undefined;
  },
): Promise<Described> {
  const { directory, warnings, options } = capture;
  const { report } = outcome;
  const signal = options.signal;
  if (outcome.archive !== undefined && outcome.reason !== undefined) {
    report.truncated = true;
  }
  const { identity } = outcome;
  let uuidFile: string | undefined;
  if (identity.program?.uuid !== undefined) {
    try {
      uuidFile = basename(
        await writeFileAtomic(
          join(directory, `${admitted.base}.txt`),
          ReadableStream.from([identity.program.uuid]),
          { mode: capture.mode },
        ),
      );
    } catch (error) {
      warnings.push(`Cannot write the .uuid copy: ${errorText(error)}`);
    }
  }
  const { owner: _o, claim: _c, protects: _p, ...kept } = admitted.record;
  const record: CaptureRecord = {
    ...kept,
    state: signal?.aborted ? "interrupted" : "done",
  };
  const archiveName = outcome.archive === undefined
    ? null
    : basename(outcome.archive);
  const final = (withDetails: boolean) =>
    metadataOf(capture, {
      archive: archiveName,
      reason: outcome.reason,
      capture: record,
      pressedBlocks: outcome.pressedBlocks,
      spilledBlocks: outcome.spilledBlocks,
      report: withDetails ? report : {
        size: report.size,
        programs: [],
        modules: [],
        memory: [],
        truncated: report.truncated,
      },
      backtrace: withDetails ? outcome.backtrace : undefined,
      named: withDetails ? outcome.named : undefined,
      signature: withDetails ? outcome.signature : undefined,
      compressedSize: archiveName === null ? null : outcome.compressedSize,
      identity: withDetails ? identity : {},
      ...compact({ uuidFile }),
    });
  // Uncounted first, so that the record says so if that fails.
  if (archiveName === null) {
    await forgetRate(capture, admitted.base);
  }
  let metadata: string | undefined = admitted.reservation.path;
  try {
    await admitted.reservation.finish(final(true), final(false));
  } catch (error) {
    warnings.push(`Cannot complete the metadata: ${errorText(error)}`);
    metadata = undefined;
  }
  return {
    result: {
      archive: outcome.archive,
      reason: outcome.reason,
      metadata,
      coreSize: report.size,
      compressedSize: outcome.compressedSize,
      lost: outcome.lost,
      ...compact({
        interrupted: signal?.aborted ? String(signal.reason) : undefined,
      }),
      warnings,
    },
    final,
    archiveName,
  };
}

/** A core counted by the rate limit was not stored: uncount it. */
export async function forgetRate(
  capture: Capture,
  base: string,
): Promise<void> {
  const { directory, warnings } = capture;
  await withStoreLock(directory, async () => {
    const now = Date.now();
    const history = await readRateState(directory, { now, warnings: [] });
    if (!history.some((r) => r.base === base)) return;
    await writeRateState(directory, history.filter((r) => r.base !== base), {
      now,
      warnings,
    });
  }, { warnings, timeoutMs: 10_000 }).catch((error) => {
    warnings.push(`Cannot update the rate state: ${errorText(error)}`);
  });
}
