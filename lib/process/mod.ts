/**
 * Processes: the facts the kernel passes about a crashed one, what
 * `/proc` tells of it, signal names, this process's identity and clocks,
 * and the pipe on its standard input that a core comes through.
 *
 * @module
 */

export * from "./identity.ts";
export * from "./kernel_facts.ts";
export * from "./proc_facts.ts";
export * from "./signals.ts";
export * from "./mounts.ts";
export * from "./stdin_pipe.ts";
