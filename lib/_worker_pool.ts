/**
 * Private: a few module workers that take tasks in turn and answer each by
 * its id.
 *
 * @module
 */

/** Workers running one module. */
export interface WorkerPool<
  T extends { id: number },
  R extends { id: number },
> {
  /** How many workers. */
  readonly size: number;
  /** Sends a task to the next worker in turn; resolves with its answer. */
  run(task: T, transfer: Transferable[]): Promise<R>;
  /** Terminates the workers. */
  stop(): void;
}

/**
 * Starts `jobs` workers of the module at `url`.
 *
 * @param url The worker module (embedded by `deno compile --include`).
 * @param jobs How many workers, at least 1.
 * @returns The pool.
 */
export function startWorkers<
  T extends { id: number },
  R extends { id: number },
>(
  url: URL,
  jobs: number,
): WorkerPool<T, R> {
  const workers = Array.from(
    { length: Math.max(1, jobs) },
    () => new Worker(url.href, { type: "module" }),
  );
  const answers = new Map<number, (result: R) => void>();
  for (const worker of workers) {
    worker.onmessage = (event: MessageEvent<R>) => {
      const answer = answers.get(event.data.id);
      answers.delete(event.data.id);
      answer?.(event.data);
    };
  }
  let sent = 0;
  return {
    size: workers.length,
    run(task, transfer) {
      const answer = new Promise<R>((resolve) => answers.set(task.id, resolve));
      workers[sent++ % workers.length]!.postMessage(task, transfer);
      return answer;
    },
    stop() {
      for (const worker of workers) worker.terminate();
    },
  };
}
