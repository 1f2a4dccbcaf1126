/**
 * Capturing a core from the kernel's pipe into the store, with hooks.
 *
 * @module
 */

export * from "./capture.ts";
export * from "./hooks.ts";
