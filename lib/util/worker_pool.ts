/**
 * Private: a few module workers that take tasks in turn and answer each by
 * its id, and the failures of those workers as errors of one line.
 *
 * A worker does not run its module directly: it runs this module, which
 * imports the worker module and reports the outcome. Deno prints a stack
 * trace on stderr for a worker whose main module cannot be loaded or that
 * throws, whatever the parent does with the `error` event; an import that
 * fails and errors caught in the worker's own scope print nothing. So a
 * module missing from the binary (built without `deno compile --include`),
 * a syntax error or an uncaught exception reaches the caller as a
 * {@linkcode WorkerFailedError}, and the tool prints one line.
 *
 * Protocol (ids below 0 are the pool's own):
 * - `{ id: -1 }`: the worker module is loaded; tasks may be posted.
 * - `{ id: -2, fatal: "<reason>" }`: the module did not load, or an error
 *   escaped it: the pool fails.
 * - `{ id, error: "<reason>", data? }`: the task failed; `data` hands the
 *   task's buffer back ({@linkcode TaskFailedError}).
 *
 * @module
 */

/** The id of the message that says a worker module is loaded. */
const READY_ID = -1;
/** The id of the message that says a worker module failed. */
const FATAL_ID = -2;

/** A worker could not start, or stopped answering: no task can be trusted to it. */
export class WorkerFailedError extends Error {
  /** The worker module, e.g. `lib/_deflate_worker.ts`. */
  readonly module: string;
  /** What went wrong, one line. */
  readonly reason: string;
  /**
   * Creates the error.
   *
   * @param message One line: what was expected, what was found, where.
   * @param module The worker module.
   * @param reason What went wrong.
   */
  constructor(
    message: string,
    module: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "WorkerFailedError";
    this.module = module;
    this.reason = reason;
  }
}

/**
 * One task failed in a worker that caught the error: the worker still runs,
 * and `data` is the task's buffer, handed back, when the worker returned it.
 */
export class TaskFailedError extends WorkerFailedError {
  /** The task's input buffer, transferred back by the worker. */
  readonly data: ArrayBuffer | undefined;
  /**
   * Creates the error.
   *
   * @param message One line: what was expected, what was found, where.
   * @param module The worker module.
   * @param reason The worker's message.
   * @param data The task's buffer, if the worker returned it.
   */
  constructor(
    message: string,
    module: string,
    reason: string,
    data: ArrayBuffer | undefined,
  ) {
    super(message, module, reason);
    this.name = "TaskFailedError";
    this.data = data;
  }
}

/** Workers running one module. */
export interface WorkerPool<
  T extends { id: number },
  R extends { id: number },
> {
  /** How many workers. */
  readonly size: number;
  /**
   * Resolves once every worker has loaded its module; rejects with a
   * {@linkcode WorkerFailedError} when one cannot.
   */
  readonly ready: Promise<void>;
  /**
   * Sends a task to the next worker in turn (once the pool is ready: until
   * then it waits, its buffers untouched); resolves with its answer.
   * Rejects with a {@linkcode TaskFailedError} when the worker reports that
   * the task failed, and with a {@linkcode WorkerFailedError} when the pool
   * failed or was stopped (the task's transferred buffers are then lost,
   * unless it had not been posted yet).
   */
  run(task: T, transfer: Transferable[]): Promise<R>;
  /** Terminates the workers; tasks still waiting are rejected. */
  stop(): void;
}

/** Options for {@linkcode startWorkers}. */
export interface WorkerPoolOptions {
  /**
   * What the workers are, for messages: `compression worker`.
   *
   * @default {"worker"}
   */
  label?: string;
  /**
   * How long the workers may take to start before the pool fails (a
   * worker that never loads must not hold a capture forever).
   *
   * @default {10000}
   */
  readyTimeoutMs?: number;
}

/** A task's settlement. */
interface Answer<R> {
  resolve(result: R): void;
  reject(error: unknown): void;
}

/**
 * Starts `jobs` workers of the module at `url`.
 *
 * @example Usage
 * ```ts
 * import { startWorkers, WorkerFailedError } from "./worker_pool.ts";
 * import { pathToFileURL } from "node:url";
 * import assert from "node:assert/strict";
 *
 * // A worker module answers each task by its id.
 * const path = await Deno.makeTempFile({ suffix: ".js" });
 * await Deno.writeTextFile(
 *   path,
 *   "self.onmessage = ({ data }) => self.postMessage({ id: data.id, sum: data.a + data.b });",
 * );
 * type Task = { id: number; a: number; b: number };
 * type Result = { id: number; sum: number };
 * const pool = startWorkers<Task, Result>(pathToFileURL(path), 2, {
 *   label: "adding worker",
 * });
 * try {
 *   assert.deepEqual(await pool.run({ id: 1, a: 2, b: 3 }, []), { id: 1, sum: 5 });
 *   assert.equal(pool.size, 2);
 * } finally {
 *   pool.stop();
 *   await Deno.remove(path);
 * }
 *
 * // A module that cannot be loaded fails the pool, in one line.
 * const missing = startWorkers(pathToFileURL(`${path}.missing.js`), 1);
 * await assert.rejects(missing.ready, WorkerFailedError);
 * ```
 *
 * @param url The worker module (embedded by `deno compile --include`).
 * @param jobs How many workers, at least 1.
 * @param options How to name the workers in messages.
 * @returns The pool.
 */
export function startWorkers<
  T extends { id: number },
  R extends { id: number },
>(
  url: URL,
  jobs: number,
  options: WorkerPoolOptions = {},
): WorkerPool<T, R> {
  const label = options.label ?? "worker";
  const module = moduleName(url);
  const workers = Array.from(
    { length: Math.max(1, jobs) },
    () =>
      new Worker(import.meta.url, {
        type: "module",
        name: url.href,
      }),
  );
  const answers = new Map<number, Answer<R>>();
  const waiting: [T, Transferable[]][] = [];
  const loaded = new Set<Worker>();
  let failure: WorkerFailedError | undefined;
  let isReady = false;
  let sent = 0;
  let markReady!: () => void;
  let markFailed!: (error: WorkerFailedError) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  // Callers may never look: not an unhandled rejection.
  ready.catch(() => {});
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const startTimer = setTimeout(() => {
    if (!isReady && failure === undefined) {
      failWith(`it did not start within ${readyTimeoutMs / 1000} s`);
    }
  }, readyTimeoutMs);
  Deno.unrefTimer(startTimer);
  ready.then(() => clearTimeout(startTimer), () => clearTimeout(startTimer));

  const post = (task: T, transfer: Transferable[]) => {
    workers[sent++ % workers.length]!.postMessage(task, transfer);
  };

  /** The pool is done for: every task still open is rejected. */
  const fail = (error: WorkerFailedError) => {
    if (failure !== undefined) return;
    failure = error;
    for (const worker of workers) worker.terminate();
    markFailed(error);
    waiting.length = 0;
    const open = [...answers.values()];
    answers.clear();
    for (const answer of open) answer.reject(error);
  };

  const failWith = (reason: string) => {
    const line = oneLine(reason);
    fail(
      isReady
        ? new WorkerFailedError(
          `Cannot run the ${label} ${module}: it failed with ${line}, expected it to answer every task`,
          module,
          line,
        )
        : new WorkerFailedError(
          `Cannot start the ${label} ${module}: ${line}; ${
            /not found/i.test(line)
              ? "expected it to be embedded in the binary (deno compile --include)"
              : "expected the module to load"
          }`,
          module,
          line,
        ),
    );
  };

  for (const worker of workers) {
    worker.onmessage = (event: MessageEvent) => {
      const message = event.data as {
        id: number;
        fatal?: unknown;
        error?: unknown;
        data?: unknown;
      };
      if (message.id === READY_ID) {
        loaded.add(worker);
        if (
          !isReady && failure === undefined && loaded.size === workers.length
        ) {
          isReady = true;
          markReady();
          for (const [task, transfer] of waiting.splice(0)) {
            post(task, transfer);
          }
        }
        return;
      }
      if (message.id === FATAL_ID) {
        failWith(String(message.fatal));
        return;
      }
      const answer = answers.get(message.id);
      answers.delete(message.id);
      if (answer === undefined) return;
      if (typeof message.error === "string") {
        const reason = oneLine(message.error);
        answer.reject(
          new TaskFailedError(
            `Cannot run a task in the ${label} ${module}: ${reason}`,
            module,
            reason,
            message.data instanceof ArrayBuffer ? message.data : undefined,
          ),
        );
        return;
      }
      answer.resolve(event.data as R);
    };
    // Unhandled, an error event of a worker ends the process with a stack
    // trace: it becomes a rejection instead.
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      failWith(event.message || String(event.error));
    };
    worker.onmessageerror = () => {
      fail(
        new WorkerFailedError(
          `Cannot read an answer of the ${label} ${module}: it could not be deserialized, expected a structured-clone message`,
          module,
          "an answer could not be deserialized",
        ),
      );
    };
  }

  return {
    size: workers.length,
    ready,
    run(task, transfer) {
      const answer = new Promise<R>((resolve, reject) => {
        if (failure !== undefined) reject(failure);
        else answers.set(task.id, { resolve, reject });
      });
      // Callers that stop early never look at later answers.
      answer.catch(() => {});
      if (failure === undefined) {
        if (isReady) post(task, transfer);
        else waiting.push([task, transfer]);
      }
      return answer;
    },
    stop() {
      fail(
        new WorkerFailedError(
          `Cannot run a task in the ${label} ${module}: the workers were stopped, expected them to run until the last answer`,
          module,
          "the workers were stopped",
        ),
      );
    },
  };
}

/** A worker module's path from the project root, for messages. */
function moduleName(url: URL): string {
  const root = new URL("../..", import.meta.url).href;
  return url.href.startsWith(root)
    ? url.href.slice(root.length)
    : decodeURIComponent(url.pathname);
}

/** The first line of a message, without Deno's `Uncaught` prefix. */
function oneLine(text: string): string {
  return (text.split("\n")[0] ?? "").trim()
    .replace(/^Uncaught (\(in promise\) )?/, "")
    .replace(/\.$/, "") || "an unknown error";
}

/** In a worker started by the pool: loads the module named by the worker. */
function boot(): void {
  const scope = self as unknown as {
    name: string;
    postMessage(message: unknown): void;
    addEventListener(
      type: "error" | "unhandledrejection",
      listener: (event: Event) => void,
    ): void;
  };
  const fatal = (reason: string) => {
    scope.postMessage({ id: FATAL_ID, fatal: reason });
  };
  // Errors that escape the module: reported, not printed with a stack.
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    const error = event as ErrorEvent;
    fatal(error.message || String(error.error));
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = (event as PromiseRejectionEvent).reason;
    fatal(reason instanceof Error ? reason.message : String(reason));
  });
  import(scope.name).then(
    () => scope.postMessage({ id: READY_ID }),
    (error: unknown) =>
      fatal(error instanceof Error ? error.message : String(error)),
  );
}

if (import.meta.main && "WorkerGlobalScope" in globalThis) boot();
