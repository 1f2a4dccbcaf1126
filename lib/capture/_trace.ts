/**
 * Private: the stack traces of a capture, made once the last byte is read
 * from what the inspector kept, within a time budget.
 *
 * @module
 */

import { basename } from "node:path";
import type { CoreReport } from "../elf/mod.ts";
import {
  type Backtrace,
  backtraceCore,
  openProcessFiles,
  type ProcessFiles,
  type TraceFrame,
} from "../unwind/mod.ts";
import { signalName } from "../process/mod.ts";
import { backtraceEntries, type ThreadEntry } from "../store/mod.ts";
import { debuginfodFromEnv, symbolizeFrames } from "../debuginfo/mod.ts";
import { errorText } from "../util/mod.ts";

/** Milliseconds the unwinding may take, all threads together. */
export const TRACE_BUDGET_MS = 250;

/**
 * Opens the crashed process's module files while it is alive, so that it
 * can be let go before the unwinding; undefined when it cannot be trusted.
 */
export async function takeProcessFiles(
  report: CoreReport,
  pid: number | undefined,
): Promise<ProcessFiles | undefined> {
  if (pid === undefined) return undefined;
  try {
    return await openProcessFiles(report, pid);
  } catch {
    return undefined;
  }
}

/**
 * Every thread's trace; undefined when the core has no notes to start from.
 * The process's files stay open: the caller closes them.
 */
export async function traceCapture(
  report: CoreReport,
  process: ProcessFiles | undefined,
  warnings: string[],
): Promise<Backtrace | undefined> {
  if (report.notes === undefined) return undefined;
  try {
    // No file on FUSE or a network file system is opened while the crash
    // is handled: the crashed process may be the FUSE server.
    const options = {
      deadline: performance.now() + TRACE_BUDGET_MS,
      paths: "local" as const,
    };
    return await backtraceCore(
      report,
      process === undefined ? options : { ...options, process },
    );
  } catch (error) {
    warnings.push(`Cannot make the stack trace: ${errorText(error)}`);
    return undefined;
  }
}

/** `level3 (t1 + 0x1170)`: a frame as the kernel log names it. */
export function frameText(frame: TraceFrame): string {
  const where = frame.module === undefined
    ? `0x${frame.pc.toString(16)}`
    : `${basename(frame.module)} + 0x${(frame.offset ?? 0n).toString(16)}`;
  return frame.function === undefined ? where : `${frame.function} (${where})`;
}

/**
 * The signal and the crashing thread's top frame, for the kernel log:
 * `SIGSEGV in level3 (t1 + 0x1170)`; undefined without a frame.
 */
export function crashedIn(
  backtrace: Backtrace | undefined,
  signal: number | undefined,
): string | undefined {
  const top = backtrace?.threads.find((t) => t.crashed)?.frames[0];
  if (top === undefined) return undefined;
  const name = signal === undefined ? "" : `${signalName(signal)} `;
  return `${name}in ${frameText(top)}`;
}

/** All the naming online may take. */
export const ONLINE_BUDGET_MS = 10_000;

/**
 * The trace named from debuginfod servers (`--symbolize-online`), after
 * the crashed process was let go; undefined when not asked or no trace.
 */
export async function nameOnline(
  backtrace: Backtrace | undefined,
  urls: readonly string[] | undefined,
  warnings: string[],
): Promise<ThreadEntry[] | undefined> {
  if (backtrace === undefined || urls === undefined || urls.length === 0) {
    return undefined;
  }
  const problems: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ONLINE_BUDGET_MS);
  });
  const naming = (async () => {
    const threads: ThreadEntry[] = [];
    for (const thread of backtraceEntries(backtrace)) {
      threads.push({
        ...thread,
        frames: await symbolizeFrames(thread.frames, {
          debuginfod: {
            // The kernel gives no environment: /var/cache, as root's.
            ...debuginfodFromEnv({
              ...Deno.env.toObject(),
              DEBUGINFOD_URLS: urls.join(" "),
            })!,
            timeoutMs: ONLINE_BUDGET_MS,
          },
          problems,
        }),
      });
    }
    return threads;
  })();
  const named = await Promise.race([naming, late]).catch((error) => {
    warnings.push(`Cannot name the trace online: ${errorText(error)}`);
    return undefined;
  }).finally(() => clearTimeout(timer));
  if (named === undefined) {
    warnings.push(
      `Cannot name the trace online within ${ONLINE_BUDGET_MS / 1000} s${
        problems.length ? `: ${problems[0]}` : ""
      }`,
    );
  }
  return named;
}
