/**
 * The commands of the tool besides capture: compress and decompress files,
 * and list, inspect, extract, debug and stamp programs and stored cores.
 *
 * @module
 */

export * from "./compress_command.ts";
export * from "./debug_command.ts";
export * from "./decompress_command.ts";
export * from "./extract_command.ts";
export * from "./info_command.ts";
export * from "./list_command.ts";
export * from "./stamp_command.ts";
export * from "./uuid_command.ts";
