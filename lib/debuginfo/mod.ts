/**
 * Debug files by build-id (directories, `/usr/lib/debug`, `.gnu_debuglink`,
 * debuginfod servers with a private cache) and the naming of a trace's
 * frames from them, on any host, after the crash.
 *
 * @module
 */

export * from "./debuginfod.ts";
export * from "./locate.ts";
export * from "./symbolize.ts";
export * from "./line_table.ts";
export * from "./demangle.ts";
export * from "./debug_info.ts";
