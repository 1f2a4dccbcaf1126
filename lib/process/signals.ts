/**
 * Names of Linux signals, for the signal number the kernel passes as `%s`.
 *
 * The numbers are those of x86, arm, aarch64, powerpc and riscv, the hosts
 * `deno compile` builds for; mips, sparc and alpha number some differently.
 *
 * @module
 */

const SIGNAL_NAMES: readonly string[] = [
  "",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/**
 * The name of a signal number; unknown numbers render as the number.
 *
 * @param signal The signal number.
 * @returns `"SIGSEGV"` for 11, `"SIGRTMIN+2"` for 36, `"99"` for 99.
 *
 * @example Usage
 * ```ts
 * import { signalName } from "./signals.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(signalName(11), "SIGSEGV");
 * assert.equal(signalName(36), "SIGRTMIN+2");
 * assert.equal(signalName(99), "99");
 * ```
 */
export function signalName(signal: number): string {
  const name = SIGNAL_NAMES[signal];
  if (name !== undefined && name !== "") return name;
  if (signal >= 34 && signal <= 64) return `SIGRTMIN+${signal - 34}`;
  return String(signal);
}
