/**
 * Private: phase 0 of a capture: the options resolved, the store directory
 * chosen, the limits and the rate key.
 *
 * @module
 */

import {
  checkWritable,
  DEFAULT_DIRECTORY,
  fileSystemSpace,
  type PolicyLimits,
  preparePrivateDirectory,
  type StoreOptions,
} from "../store/mod.ts";
import { DEFAULT_PARALLEL_LEVEL, type Format } from "../compress/mod.ts";
import { errorText, resolveSize, type SizeSpec } from "../util/mod.ts";
import { CaptureOptions } from "./capture.ts";
import { exePath, type KernelFacts } from "../process/mod.ts";

/**
 * The store's defaults, in the spirit of systemd-coredump: the store may use
 * 10% of its file system and must leave 15% free (each at most 4 GiB), keeps
 * at most 100 cores and 1000 records of metadata only, ages them out after
 * 14 days, and stores at most 5 cores per program per hour. There is no size
 * limit per core unless given, and the crashed process's RLIMIT_CORE is
 * honoured.
 */
export const DEFAULT_STORE = {
  maxUse: { percent: 10 },
  maxUseCap: 4 * 1024 ** 3,
  keepFree: { percent: 15 },
  keepFreeCap: 4 * 1024 ** 3,
  maxCount: 100,
  maxRecords: 1000,
  maxAgeMs: 14 * 86_400_000,
  rate: { count: 5, periodMs: 3_600_000 },
} as const;

/** Most compression workers of a capture, whatever -j says. */
export const MAX_CAPTURE_JOBS = 16;

/** Everything the phases share. */
export interface Capture {
  options: CaptureOptions;
  directory: string;
  time: Date;
  format: Format;
  level: number;
  /** Whether `level` was asked for (else it adapts to the writer). */
  fixedLevel: boolean;
  jobs: number;
  mode: number;
  facts: KernelFacts;
  store: StoreOptions;
  limits: PolicyLimits;
  rateKey: string;
  warnings: string[];
  started: number;
}

/** Resolves everything the capture needs before it reads the core. */
export async function prepare(options: CaptureOptions): Promise<Capture> {
  const warnings = [...(options.warnings ?? [])];
  const { format = "gzip", facts = {}, store = {} } = options;
  const time = crashTime(facts, warnings);
  const directory = await chooseDirectory(
    options.directory,
    options.fallbackDirectory ?? DEFAULT_DIRECTORY,
    warnings,
  );
  const cpus = navigator.hardwareConcurrency || 1;
  const cap = Math.min(cpus, MAX_CAPTURE_JOBS);
  let jobs = options.jobs ?? cap;
  if (jobs > cap) {
    warnings.push(
      `used ${cap} compression threads, not ${jobs}: at most one per core (${cpus}) in capture mode`,
    );
    jobs = cap;
  }
  const space = await fileSystemSpace(directory);
  return {
    options,
    directory,
    time,
    format,
    level: options.level ?? DEFAULT_PARALLEL_LEVEL,
    fixedLevel: options.level !== undefined,
    jobs,
    // A set-id process's core stays root-only whatever --mode says.
    mode: facts.dumpable === 2 ? 0o600 : store.mode ?? 0o600,
    facts,
    store,
    limits: resolveLimits(store, space.total),
    rateKey: rateKey(facts, options.argument),
    warnings,
    started: performance.now(),
  };
}

/**
 * The program as the rate limit counts it: `%E`, else the executable of
 * `/proc/<pid>`, else `-a`.
 */
export function rateKey(
  facts: KernelFacts,
  argument: string | undefined,
): string {
  const exe = exePath(facts);
  if (exe !== undefined) return exe;
  if (facts.pid !== undefined) {
    try {
      return Deno.readLinkSync(`/proc/${facts.pid}/exe`)
        .replace(/ \(deleted\)$/, "");
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return argument ?? "unknown";
}

/** The store limits with defaults, resolved against the file system. */
export function resolveLimits(
  store: StoreOptions,
  total: number,
): PolicyLimits {
  const cap = (spec: SizeSpec | undefined, fallback: SizeSpec, max: number) =>
    spec === undefined
      ? Math.min(resolveSize(fallback, total), max)
      : resolveSize(spec, total);
  return {
    maxUse: cap(store.maxUse, DEFAULT_STORE.maxUse, DEFAULT_STORE.maxUseCap),
    keepFree: cap(
      store.keepFree,
      DEFAULT_STORE.keepFree,
      DEFAULT_STORE.keepFreeCap,
    ),
    maxCount: store.maxCount ?? DEFAULT_STORE.maxCount,
    maxRecords: store.maxRecords ?? DEFAULT_STORE.maxRecords,
    maxAgeMs: store.maxAgeMs ?? DEFAULT_STORE.maxAgeMs,
    rate: store.rate ?? DEFAULT_STORE.rate,
  };
}

/** The crash time: `%t` when given and sane, else the clock. */
export function crashTime(facts: KernelFacts, warnings: string[]): Date {
  if (facts.time !== undefined) {
    const time = new Date(facts.time * 1000);
    // Names hold a four-digit year.
    if (time.getTime() <= Date.UTC(9999, 11, 31, 23, 59, 59)) return time;
    warnings.push(
      `ignored time ${facts.time}: expected a time before the year 10000`,
    );
  }
  return new Date();
}

/** The requested store directory, or the fallback with a warning. */
export async function chooseDirectory(
  directory: string,
  fallback: string,
  warnings: string[],
): Promise<string> {
  try {
    await preparePrivateDirectory(directory);
    await checkWritable(directory);
    return directory;
  } catch (error) {
    if (directory === fallback) throw error;
    warnings.push(`${errorText(error)}; storing in '${fallback}' instead`);
  }
  await preparePrivateDirectory(fallback);
  return fallback;
}

/** The level of blocks deflated while the writer waits on the capture. */
export const PRESSED_LEVEL = 2;

/**
 * Blocks read in a row without finding the pipe full, after which the
 * capture goes back from {@linkcode PRESSED_LEVEL} to its level.
 */
export const PRESSURE_HOLD = 8;
