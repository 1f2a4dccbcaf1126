/**
 * ELF files and core dumps, read with one bounds-checked reader: headers,
 * sections, notes, the streaming core inspector and program identity
 * (`.uuid`, GNU build-id).
 *
 * @module
 */

export * from "./core_inspector.ts";
export * from "./elf.ts";
export * from "./errors.ts";
export * from "./notes.ts";
export * from "./program_info.ts";
export * from "./registers.ts";
export { ByteReader, type ByteReaderOptions, hex } from "./_byte_reader.ts";
