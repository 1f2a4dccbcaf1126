/**
 * The command line: flags, parsing, configuration, kernel log and the
 * commands.
 *
 * @module
 */

export * from "./args.ts";
export * from "./config.ts";
export * from "./kernel_log.ts";
export * from "./commands/compress_command.ts";
export * from "./commands/debug_command.ts";
export * from "./commands/decompress_command.ts";
export * from "./commands/extract_command.ts";
export * from "./commands/info_command.ts";
export * from "./commands/list_command.ts";
export * from "./commands/stamp_command.ts";
export * from "./commands/uuid_command.ts";
