/**
 * Private: phase 2 of a capture: the core streamed through the compressor
 * into its archive, within the claim of the store it grows.
 *
 * @module
 */

import { join } from "node:path";
import { openSpillFile, type SpillFile, writeFileAtomic } from "../fs/mod.ts";
import {
  BLOCK_SIZE,
  type CompressEnd,
  formatExtension,
  parallelCompress,
} from "../compress/mod.ts";
import { CoreInspectorStream } from "../elf/mod.ts";
import {
  claimStep,
  extendClaim,
  fileSystemSpace,
  readLedger,
  RESERVATION_BYTES,
  withStoreLock,
} from "../store/mod.ts";
import { compact, errorText } from "../util/mod.ts";
import { type ClockReading, readClocks } from "../process/mod.ts";
import { Capture, PRESSED_LEVEL, PRESSURE_HOLD } from "./_prepare.ts";
import { CoreSource } from "./_source.ts";
import { Admitted, emptyReport, removeEntries, UUID_ROOM } from "./_admit.ts";
import { watch } from "./_space_watch.ts";
import { metadataOf } from "./_describe.ts";

/** What streaming (or reading for the notes) came to. */
export interface Outcome {
  archive?: string | undefined;
  compressedSize: number;
  reason?: string | undefined;
  lost: boolean;
  /** Blocks deflated at PRESSED_LEVEL; undefined when the level was fixed. */
  pressedBlocks?: number | undefined;
  /** Blocks that waited in the spill file. */
  spilledBlocks?: number | undefined;
}

/** Metadata only: read the core to its end for its notes and size. */
export async function readForNotes(
  capture: Capture,
  source: CoreSource,
): Promise<Outcome> {
  if (!capture.options.signal?.aborted) {
    while (await source.read() !== undefined) {
      // The inspector sees every byte.
    }
  }
  return { compressedSize: 0, lost: false };
}

/** Free space fell under --keep-free while the core was being written. */
export class KeepFreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeepFreeError";
  }
}

/** The signal stopped the capture. */
export class InterruptedError extends Error {
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
    this.name = "InterruptedError";
  }
}

/**
 * Phase 2: the core through the compressor into the archive, within the
 * claimed room; an archive that cannot be written still leaves the core
 * read for its notes.
 */
export async function streamArchive(
  capture: Capture,
  admitted: Admitted,
  source: CoreSource,
  inspector: CoreInspectorStream,
): Promise<Outcome> {
  const { directory, options, warnings } = capture;
  const signal = options.signal;
  const claim = claimer(capture, admitted);
  let end: CompressEnd | undefined;
  // Blocks the workers cannot take yet wait on disk: the core is read at
  // the kernel's pace, and the crashed process is let go once it is read.
  using spill = await openSpill(capture);
  let written = 0;
  // A byte stream: the compressor's block buffers are handed down, and the
  // core is read straight into them.
  // Without an explicit level, blocks are deflated at the faster
  // PRESSED_LEVEL from the first block whose first read finds the pipe full
  // (the kernel waits on the capture) until PRESSURE_HOLD blocks in a row
  // were read without one. Through the kernel on the mixed core, the reads
  // flicker: once slots free up in the compressor, a burst of reads drains
  // the pipe faster than the kernel fills it, and the blocks of that burst,
  // judged on their own reads, went at level 5 (85 of 310 text blocks), to be
  // deflated in twice the time the kernel then waited for.
  // One full pipe alone may be the backlog of the capture's start (the
  // kernel wrote while Deno loaded): the hold starts at the second block in
  // a row that found it full, when the writer refilled it while we worked.
  const pressure = capture.fixedLevel ? undefined : options.pressure;
  let pressedRead = false;
  let lastPressed = false;
  let calmBlocks = PRESSURE_HOLD;
  let pressedBlocks = 0;
  const blockLevel = pressure === undefined ? undefined : () => {
    // Asked once a block is read, before the next block's first read.
    const holding = calmBlocks < PRESSURE_HOLD;
    calmBlocks = pressedRead && (holding || lastPressed) ? 0 : calmBlocks + 1;
    lastPressed = pressedRead;
    pressedRead = false;
    if (calmBlocks >= PRESSURE_HOLD) return capture.level;
    pressedBlocks++;
    return PRESSED_LEVEL;
  };
  // When the workers start: `CaptureOptions.backlog`. A nearly full pipe
  // counts too, whatever the level: one of 1 MiB never holds more than a
  // block.
  const { backlog } = options;
  const deferWorkers = backlog &&
    (() => backlog() >= BLOCK_SIZE || (options.pressure?.() ?? false));
  const feed = new ReadableStream<Uint8Array>({
    type: "bytes",
    async pull(controller) {
      const request = (controller as ReadableByteStreamController)
        .byobRequest;
      const asked = request?.view ?? undefined;
      // Taken before the read moves the buffer.
      const offset = asked?.byteOffset ?? 0;
      const capacity = asked?.buffer.byteLength ?? 0;
      const into = asked === undefined
        ? undefined
        : new Uint8Array(asked.buffer, asked.byteOffset, asked.byteLength);
      // Whether the pipe was full as this block's first read began: the
      // kernel was waiting on the capture. Asked once a block, not before
      // every read: the kernel counts a pipe's bytes with it locked, and
      // the writer waits on that lock.
      if (offset === 0 && pressure?.()) pressedRead = true;
      const chunk = signal?.aborted ? undefined : await source.read(into);
      if (signal?.aborted) {
        controller.error(new InterruptedError(String(signal.reason)));
      } else if (chunk === undefined) {
        controller.close();
        // A read that moved the request's memory answers with that memory.
        const moved = source.endView;
        if (
          moved !== undefined && moved.byteOffset === offset &&
          moved.buffer.byteLength === capacity
        ) request?.respondWithNewView(moved);
        else request?.respond(0);
      } else if (
        request && chunk.byteOffset === offset &&
        chunk.buffer.byteLength === capacity
      ) {
        request.respondWithNewView(chunk);
      } else controller.enqueue(chunk.slice());
    },
    cancel() {
      // The compressor stopped (at the claim, or on an error): what is
      // read next is decided below.
    },
  }, { highWaterMark: 0 });
  const compressed = parallelCompress(feed, {
    format: capture.format,
    level: capture.level,
    ...compact({ blockLevel, deferWorkers }),
    jobs: capture.jobs,
    inline: capture.jobs === 1,
    ...compact({ spill, workerNice: spill && SPILL_WORKER_NICE }),
    fallback: "inline",
    onWarning: (message) => warnings.push(message),
    // The chunk index for parallel decompression, sized by the core's own
    // headers, written over the header at the end.
    index: {
      expectedSize: () => {
        const declared = inspector.declaredSize;
        return declared === undefined
          ? undefined
          : Math.min(declared, source.limit);
      },
    },
    maxOutput: (needed: number) => claim.allowance(needed),
    onEnd: (e) => end = e,
  });
  const counted = compressed.pipeThrough(watch(capture, (n) => written = n));
  const path = join(directory, admitted.base + formatExtension(capture.format));
  try {
    const archive = await writeFileAtomic(path, counted, {
      mode: capture.mode,
      amend: compressed.amendment,
      // Measured both ways as it goes: where new pages of the page cache
      // are dear (after heavy writing on a VM whose host takes back free
      // memory), the random blocks of the mixed core went out in 0.1-0.15
      // s instead of 0.46-0.92 s while the kernel waited.
      direct: "auto",
      // A signal stops the write wherever it waits (a stalled producer,
      // workers that do not answer).
      ...compact({ signal }),
    });
    // Cut at the claim: reading stops there, and the process is released.
    if (end?.cut) await source.stop();
    let reason: string | undefined;
    if (source.cut) {
      reason = `cut at ${source.limit} bytes (${
        source.limit === capture.store.maxSize
          ? "--max-size"
          : "RLIMIT_CORE of the crashed process"
      }); reading stopped there`;
    } else if (end?.cut) {
      reason =
        `cut at ${end.inputBytes} bytes of core (${written} compressed): --max-use ${capture.limits.maxUse} bytes left no more room; reading stopped there`;
    }
    return {
      archive,
      compressedSize: written,
      lost: false,
      reason,
      pressedBlocks: blockLevel === undefined ? undefined : pressedBlocks,
      spilledBlocks: end?.spilledBlocks,
    };
  } catch (error) {
    if (signal?.aborted) return { compressedSize: 0, lost: false };
    const policy = error instanceof KeepFreeError;
    // Read the rest for the notes and the size, and release the process.
    await readForNotes(capture, source);
    return {
      compressedSize: 0,
      lost: !policy,
      reason: `${
        errorText(error)
      }: the partial core was removed, metadata only`,
    };
  }
}

/** The most bytes of core that wait on disk, unless --spill-max says. */
export const DEFAULT_SPILL_MAX = 1024 ** 3;

/**
 * The nice value of the compression workers while blocks may spill: the
 * thread that reads the core runs first (measured through the kernel on
 * the mixed core: the process was released 0.3-0.5 s sooner at 19 than
 * with the workers at the reader's priority, which left the reads at half
 * the CPU).
 */
export const SPILL_WORKER_NICE = 19;

/**
 * The spill file of a capture from the kernel's pipe (a writer that waits
 * on the reads), in the store's file system: at most --spill-max, and at
 * most half of the free space above --keep-free, the other half left free
 * for the archive whatever else spills beside it. None for `-j 1` (no
 * workers to wait for) or a core on a file.
 */
async function openSpill(capture: Capture): Promise<SpillFile | undefined> {
  const max = capture.store.spillMax ?? DEFAULT_SPILL_MAX;
  if (capture.options.pressure === undefined || capture.jobs <= 1) {
    return undefined;
  }
  if (max < BLOCK_SIZE) return undefined;
  try {
    const { free } = await fileSystemSpace(capture.directory);
    const { keepFree } = capture.limits;
    const half = Math.floor((free - keepFree) / 2);
    const limit = Math.min(max, half);
    if (limit < BLOCK_SIZE) return undefined;
    // The other half stays free whatever else spills beside it (captures
    // of crashes side by side): the archive's room.
    return openSpillFile(capture.directory, {
      limit,
      minFree: keepFree + half,
      // Measured both ways: the page cache where it is cheap (0.25 ms a
      // MiB), direct writes where its new pages are dear (0.5-1.1 ms a MiB
      // against 2.1-2.7 after heavy writing on this project's VMs).
      direct: "auto",
    });
  } catch (error) {
    capture.warnings.push(
      `${errorText(error)}; the core was read at the compressor's pace`,
    );
    return undefined;
  }
}

/** The room a capture claims of `--max-use`, grown as the core needs it. */
export interface Claimer {
  /**
   * The bytes the archive may take, given that it needs `needed` bytes to
   * go on: asks the store for more first when the claim is short.
   */
  allowance(needed: number): number | Promise<number>;
}

export function claimer(capture: Capture, admitted: Admitted): Claimer {
  const { directory, warnings, limits } = capture;
  const overhead = RESERVATION_BYTES + UUID_ROOM;
  let total = admitted.record.claim ?? overhead;
  let denied = false;
  const ask = async (short: number) => {
    await withStoreLock(directory, async () => {
      const clocks: ClockReading = readClocks();
      const ledger = await readLedger(directory, { clocks, warnings });
      const { remove, grant } = extendClaim(
        ledger.entries,
        admitted.base,
        short,
        {
          want: Math.max(
            claimStep(limits.maxUse),
            Math.min(Math.floor(total / 4), Math.floor(limits.maxUse / 16)),
          ),
          maxUse: limits.maxUse,
        },
      );
      await removeEntries(directory, ledger.entries, remove, warnings);
      if (grant < short) denied = true;
      if (grant <= 0) return;
      total += grant;
      admitted.record.claim = total;
      await admitted.reservation.update(
        metadataOf(capture, {
          archive: admitted.base + formatExtension(capture.format),
          reason: "being captured",
          capture: admitted.record,
          report: emptyReport(),
        }),
      );
    }, { warnings });
  };
  return {
    allowance(needed) {
      const allowed = total - overhead;
      if (needed <= allowed || denied) return allowed;
      return ask(needed - allowed).catch((error) => {
        warnings.push(`Cannot claim more room: ${errorText(error)}`);
        denied = true;
      }).then(() => total - overhead);
    },
  };
}
