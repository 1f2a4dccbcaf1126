/**
 * Files: written atomically and never over an existing one, opened without
 * blocking or following links others planted, read at positions, and the
 * errors of all that in words.
 *
 * @module
 */

export * from "./atomic_file.ts";
export * from "./errors.ts";
export * from "./file_io.ts";
export * from "./open_regular.ts";
export * from "./read_at.ts";
export * from "./spill_file.ts";
export * from "./write_all.ts";
