/**
 * Stack traces of a core's threads: DWARF call frame information and
 * expressions, frame pointers and stack scanning, and function names from
 * the modules' symbol tables, with no library but the ELF reader.
 *
 * @module
 */

export * from "./backtrace.ts";
export * from "./cfi.ts";
export * from "./errors.ts";
export * from "./expression.ts";
export * from "./module_image.ts";
export * from "./symbols.ts";
export * from "./unwinder.ts";
export * from "./signature.ts";
export * from "./arm_exidx.ts";
