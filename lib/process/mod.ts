/**
 * Processes: the facts the kernel passes about a crashed one, what
 * `/proc` tells of it, signal names, and this process's identity and clocks.
 *
 * @module
 */

export * from "./identity.ts";
export * from "./kernel_facts.ts";
export * from "./proc_facts.ts";
export * from "./signals.ts";
export * from "./mounts.ts";
