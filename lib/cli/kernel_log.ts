/**
 * The kernel log (`/dev/kmsg`): where a helper started by `core_pattern`,
 * which has no stdout or stderr anyone reads, leaves what happened so that
 * `dmesg` shows it.
 *
 * @module
 */

/** syslog priorities used in kernel log lines. */
export type LogPriority = "error" | "warning" | "info";

const PRIORITY: Record<LogPriority, number> = {
  error: 3,
  warning: 4,
  info: 6,
};

/** The kernel truncates longer records. */
const MAX_RECORD_BYTES = 900;

/** Options for {@linkcode writeKernelLog}. */
export interface KernelLogOptions {
  /**
   * The syslog priority of the line.
   *
   * @default {"error"}
   */
  priority?: LogPriority;
  /**
   * The device to write to.
   *
   * @default {"/dev/kmsg"}
   */
  path?: string;
}

/**
 * Writes one line to the kernel log as `gzcoredump[<pid>]: <message>`.
 * Best effort: returns false when the log is not writable.
 *
 * @param message The line; newlines and control characters become spaces.
 * @param options Priority and device.
 * @returns True when the line was written.
 *
 * @example Usage
 * ```ts ignore
 * import { writeKernelLog } from "./kernel_log.ts";
 * await writeKernelLog("saved core to /var/crash/Core_x.gz", { priority: "info" });
 * ```
 */
export async function writeKernelLog(
  message: string,
  options: KernelLogOptions = {},
): Promise<boolean> {
  const { priority = "error", path = "/dev/kmsg" } = options;
  const flat = Array.from(
    message,
    (char) => char < " " || char === "\x7f" ? " " : char,
  ).join("");
  let record = new TextEncoder().encode(
    `<${PRIORITY[priority]}>gzcoredump[${Deno.pid}]: ${flat}`,
  );
  if (record.length > MAX_RECORD_BYTES) {
    record = record.subarray(0, MAX_RECORD_BYTES);
  }
  // Without a final newline the kernel keeps the record open for a
  // continuation, and readers do not see it until the next record.
  record = new Uint8Array([...record, 0x0a]);
  try {
    using log = await Deno.open(path, { write: true });
    await log.write(record);
    return true;
  } catch {
    return false;
  }
}
