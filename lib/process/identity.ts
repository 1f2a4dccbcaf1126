/**
 * Private: who this process is and whether another one is still alive, in
 * terms that survive pid reuse and wall-clock jumps: the pid with its start
 * time in clock ticks since boot, the boot's id, and the time since boot.
 *
 * @module
 */

/** A process, told apart from a later one with the same pid. */
export interface ProcessIdentity {
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

/** The boot id, or "" where /proc does not say it. */
export function bootId(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "";
  }
}

/** The wall clock and the time since boot, read together. */
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

/** This process's identity. */
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
 */
export function isAlive(identity: ProcessIdentity): boolean {
  if (identity.bootId !== bootId()) return false;
  return startTicks(identity.pid) === identity.startTicks;
}
