/**
 * Crash-loop protection: how many cores each program stored recently. The
 * count lives in the store (`.gzcoredump-rate.json`), so it survives
 * reboots; callers hold the store lock.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "./atomic_file.ts";
import type { Rate } from "./units.ts";

const STATE_FILE = ".gzcoredump-rate.json";
/** Most programs remembered; the least recently seen are forgotten. */
const MAX_PROGRAMS = 1000;
/** Largest state file read. */
const MAX_STATE_BYTES = 1 << 20;

/** The verdict of {@linkcode countCrash}. */
export interface RateVerdict {
  /** True when the core may be stored. */
  allowed: boolean;
  /** Cores of this program stored within the period, this one included. */
  count: number;
}

/**
 * Tells whether a core of `program` may be stored: at most `rate.count`
 * stored cores per `rate.periodMs`; a stored one is recorded.
 *
 * @param directory The store.
 * @param program A key for the program (its path or name).
 * @param options The rate and the time.
 * @returns Whether to store, and the count.
 */
export async function countCrash(
  directory: string,
  program: string,
  options: { rate: Rate; now?: Date },
): Promise<RateVerdict> {
  const now = (options.now ?? new Date()).getTime();
  const path = join(directory, STATE_FILE);
  const state = await readState(path);
  const since = now - options.rate.periodMs;
  const times = (state[program] ?? []).filter((t) => t > since && t <= now);
  const allowed = times.length < options.rate.count;
  if (allowed) times.push(now);
  // Keep what the longest sensible period needs, not every crash ever.
  state[program] = times.slice(-Math.max(options.rate.count * 4, 16));
  const programs = Object.entries(state)
    .map(([key, list]) => [key, list.filter((t) => t > since)] as const)
    .filter(([, list]) => list.length > 0)
    .sort((a, b) => Math.max(...b[1]) - Math.max(...a[1]))
    .slice(0, MAX_PROGRAMS);
  await writeFileAtomic(
    path,
    ReadableStream.from([
      new TextEncoder().encode(JSON.stringify(Object.fromEntries(programs))),
    ]),
    { mode: 0o600, replace: true },
  );
  return { allowed, count: allowed ? times.length : times.length + 1 };
}

async function readState(path: string): Promise<Record<string, number[]>> {
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile || info.size > MAX_STATE_BYTES) return {};
    const parsed = JSON.parse(await Deno.readTextFile(path));
    const state: Record<string, number[]> = {};
    if (parsed && typeof parsed === "object") {
      for (const [key, value] of Object.entries(parsed)) {
        if (Array.isArray(value)) {
          state[key] = value.filter((t) => typeof t === "number");
        }
      }
    }
    return state;
  } catch {
    // No state yet, or a damaged one: start counting again.
    return {};
  }
}
