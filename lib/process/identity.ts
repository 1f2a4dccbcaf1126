/**
 * Private: who this process is and whether another one is still alive, in
 * terms that survive pid reuse and wall-clock jumps: the pid with its start
 * time in clock ticks since boot, the boot's id, and the time since boot.
 *
 * @module
 */

/** A process, told apart from a later one with the same pid. */
export interface ProcessIdentity {
  /** The process id. */
  pid: number;
  /** `/proc/<pid>/stat` field 22: clock ticks since boot at its start. */
  startTicks: number;
  /** `/proc/sys/kernel/random/boot_id` of the boot it ran in. */
  bootId: string;
}

/** A reading of the clocks: the wall clock and the time since boot. */
export interface ClockReading {
  /** The wall clock, milliseconds since the epoch (may jump). */
  wallMs: number;
  /** Milliseconds since boot, suspend included (never jumps). */
  uptimeMs: number;
  /** The boot these readings belong to. */
  bootId: string;
}

/**
 * The boot id, or "" where /proc does not say it.
 *
 * @example Usage
 * ```ts
 * import { bootId } from "./identity.ts";
 * import assert from "node:assert/strict";
 *
 * // A UUID on Linux; the same for every call until the next boot.
 * assert.match(bootId(), /^([0-9a-f-]{36})?$/);
 * assert.equal(bootId(), bootId());
 * ```
 *
 * @returns The id of the running boot.
 */
export function bootId(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "";
  }
}

/**
 * The wall clock and the time since boot, read together.
 *
 * @example Usage
 * ```ts
 * import { bootId, readClocks } from "./identity.ts";
 * import assert from "node:assert/strict";
 *
 * const before = Date.now();
 * const clocks = readClocks();
 * assert.ok(clocks.wallMs >= before);
 * assert.ok(clocks.uptimeMs > 0);
 * assert.equal(clocks.bootId, bootId());
 * ```
 *
 * @returns The clocks now.
 */
export function readClocks(): ClockReading {
  let uptimeMs = Math.round(performance.timeOrigin + performance.now());
  try {
    const text = Deno.readTextFileSync("/proc/uptime");
    const seconds = Number(text.split(" ")[0]);
    if (Number.isFinite(seconds)) uptimeMs = Math.round(seconds * 1000);
  } catch {
    // No /proc: the wall clock stands in, jumps and all.
  }
  return { wallMs: Date.now(), uptimeMs, bootId: bootId() };
}

/**
 * The start time of a running process in clock ticks since boot; undefined
 * when there is no such process or it has ended (a zombie).
 *
 * @example Usage
 * ```ts
 * import { startTicks } from "./identity.ts";
 * import assert from "node:assert/strict";
 *
 * const ticks = startTicks("self");
 * assert.equal(typeof ticks, "number");
 * assert.equal(startTicks(Deno.pid), ticks);
 * // No process has pid 0 in /proc.
 * assert.equal(startTicks(0), undefined);
 * ```
 *
 * @param pid The process, or `"self"` for this one.
 * @returns Its start time, or undefined.
 */
export function startTicks(pid: number | "self"): number | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces and parentheses)
  // start at field 3, the state; starttime is field 22.
  const close = stat.lastIndexOf(")");
  const fields = stat.slice(close + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  const ticks = Number(fields[19]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/**
 * This process's identity.
 *
 * @example Usage
 * ```ts
 * import { bootId, selfIdentity } from "./identity.ts";
 * import assert from "node:assert/strict";
 *
 * const me = selfIdentity();
 * assert.equal(me.pid, Deno.pid);
 * assert.equal(me.bootId, bootId());
 * ```
 *
 * @returns The pid, start time and boot of this process.
 */
export function selfIdentity(): ProcessIdentity {
  return {
    pid: Deno.pid,
    startTicks: startTicks("self") ?? 0,
    bootId: bootId(),
  };
}

/**
 * True while the process is running: same boot, same pid, same start time.
 * A process of another boot, or a pid now used by a later process, is gone.
 *
 * @example Usage
 * ```ts
 * import { isAlive, selfIdentity } from "./identity.ts";
 * import assert from "node:assert/strict";
 *
 * const me = selfIdentity();
 * assert.equal(isAlive(me), true);
 * // The same pid, started at another time: a later process.
 * assert.equal(isAlive({ ...me, startTicks: me.startTicks + 1 }), false);
 * assert.equal(isAlive({ ...me, bootId: "another boot" }), false);
 * ```
 *
 * @param identity The process, as recorded while it ran.
 * @returns Whether it still runs.
 */
export function isAlive(identity: ProcessIdentity): boolean {
  if (identity.bootId !== bootId()) return false;
  return startTicks(identity.pid) === identity.startTicks;
}
