/**
 * The scheduling priority of the calling thread. On Linux the nice value
 * belongs to a thread, not to the whole process (`setpriority(2)`, BUGS):
 * a worker can step back while the thread that reads the core keeps its
 * priority.
 *
 * @module
 */

import { withLibc } from "./libc.ts";

const PRIO_PROCESS = 0;

const SYMBOLS = {
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
} as const;

/**
 * Sets the nice value of the calling thread (0 to 19: higher yields the
 * CPU to the rest of the system and to this process's other threads).
 *
 * @example Usage
 * ```ts
 * import { setThreadNice, threadId } from "./thread_priority.ts";
 * import assert from "node:assert/strict";
 *
 * // A worker steps back; this thread keeps its nice value.
 * const nice = (tid: number) =>
 *   Number(Deno.readTextFileSync(`/proc/self/task/${tid}/stat`)
 *     .split(") ")[1]!.split(" ")[16]);
 * const before = nice(threadId()!);
 * const module = await Deno.makeTempFile({ suffix: ".ts" });
 * await Deno.writeTextFile(
 *   module,
 *   `import { setThreadNice, threadId } from ${
 *     JSON.stringify(import.meta.resolve("./thread_priority.ts"))
 *   };
 *   self.postMessage({ set: setThreadNice(15), tid: threadId() });`,
 * );
 * const worker = new Worker(`file://${module}`, { type: "module" });
 * const answer = await new Promise<{ set: boolean; tid: number }>((resolve) => {
 *   worker.onmessage = (event) => resolve(event.data);
 * });
 * // Read while the worker's thread still runs: once terminated, it is gone.
 * const workerNice = nice(answer.tid);
 * worker.terminate();
 * await Deno.remove(module);
 * assert.equal(answer.set, true);
 * assert.equal(workerNice, 15);
 * assert.equal(nice(threadId()!), before);
 * ```
 *
 * @param nice The nice value.
 * @returns True when it was set; false where libc cannot be loaded or the
 * call is refused.
 */
export function setThreadNice(nice: number): boolean {
  return withLibc(
    SYMBOLS,
    (libc) => libc.setpriority(PRIO_PROCESS, 0, nice) === 0,
  ) ?? false;
}

/**
 * The calling thread's id, as `/proc/self/task/` names it.
 *
 * @returns The id, or undefined where libc cannot be loaded.
 */
export function threadId(): number | undefined {
  return withLibc(SYMBOLS, (libc) => libc.gettid());
}
