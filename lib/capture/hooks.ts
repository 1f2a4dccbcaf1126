/**
 * The store's hooks (`--before`, `--after`): programs run around a
 * capture as argv, with no shell, an empty environment and no standard
 * streams, in a process group of their own so that a hook that runs too
 * long goes with everything it started.
 *
 * @module
 */

import { errorText } from "../util/mod.ts";

/** Options for {@linkcode runHook}. */
export interface HookOptions {
  /**
   * Most time the hook may run before its whole process group is killed.
   *
   * @default {30000}
   */
  timeoutMs?: number;
}

/**
 * Runs a hook and says what went wrong, if anything.
 *
 * @param argv The program (an absolute path) and its arguments.
 * @param extra Arguments appended (the archive's path, for `--after`).
 * @param options The time limit.
 * @returns Undefined when the hook exited 0; else one line saying why not.
 *
 * @example Usage
 * ```ts
 * import { runHook } from "./hooks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await runHook(["/bin/true"], []), undefined);
 * assert.match(String(await runHook(["/bin/false"], [])), /exited with 1/);
 * ```
 */
export async function runHook(
  argv: readonly string[],
  extra: readonly string[],
  options: HookOptions = {},
): Promise<string | undefined> {
  const { timeoutMs = 30_000 } = options;
  const [program, ...args] = argv;
  const label = `hook '${argv.join(" ")}'`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program!, {
      args: [...args, ...extra],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      clearEnv: true,
      cwd: "/",
      // A session and process group of its own: killed as one.
      detached: true,
    }).spawn();
  } catch (error) {
    return `Cannot run ${label}: ${errorText(error)}`;
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  }, timeoutMs);
  const status = await child.status;
  clearTimeout(timer);
  if (killed) {
    return `${label} killed after ${
      timeoutMs / 1000
    } s, expected it to finish sooner`;
  }
  if (status.success) return undefined;
  return status.signal !== null
    ? `${label} was killed by ${status.signal}`
    : `${label} exited with ${status.code}`;
}
