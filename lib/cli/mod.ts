/**
 * The command line: flags, parsing, configuration, kernel log and the
 * commands.
 *
 * @module
 */

export * from "./args.ts";
export * from "./config.ts";
export * from "./kernel_log.ts";
export * from "./flags.ts";
export * from "./usage.ts";
export * from "./commands/mod.ts";
