/**
 * Small shared helpers: bytes, text for messages, sizes and durations,
 * memory, and the worker pool.
 *
 * @module
 */

export * from "./byte_source.ts";
export * from "./bytes.ts";
export * from "./memory.ts";
export * from "./text.ts";
export * from "./units.ts";
export * from "./worker_pool.ts";
export * from "./compact.ts";
export * from "./words.ts";
export * from "./search.ts";
export * from "./thread_priority.ts";
export * from "./libc.ts";
