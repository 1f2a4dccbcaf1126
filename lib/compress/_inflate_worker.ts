/**
 * Private worker of the parallel decompressor: inflates the tasks it is
 * sent (`_inflate_task.ts`). Started through `_worker_pool.ts`, which tells
 * the pool once this module is loaded; a task that fails is answered with
 * the error and its buffer (the pool rejects the task with them).
 *
 * @module
 */

import {
  type InflateResult,
  type InflateTask,
  inflateTask,
} from "./_inflate_task.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<InflateTask>) => void) | null;
  postMessage(message: InflateResult, transfer: Transferable[]): void;
};

scope.onmessage = (event) => {
  const result = inflateTask(event.data);
  scope.postMessage(
    result,
    result.output === undefined ? [result.data] : [result.output, result.data],
  );
};
