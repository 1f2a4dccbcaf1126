/**
 * Names a trace's frames later, on any host, from their modules' build-ids
 * and offsets alone: the module's own file where it is here with that
 * build-id, else its debug file ({@linkcode findDebugFile}), whose symbol
 * table a stripped program lacks.
 *
 * @module
 */

import { findSection, readElf, readElfAt, SHT_NOBITS } from "../elf/mod.ts";
import { openRegularFile } from "../fs/mod.ts";
import { LineTable, sectionContents } from "./line_table.ts";
import {
  DebugInfo,
  type DebugInfoSections,
  type UnitScopes,
} from "./debug_info.ts";
import { demangle } from "./demangle.ts";
import { loadModuleFile, type ModuleImage } from "../unwind/mod.ts";
import { hasBuildId } from "./debuginfod.ts";
import { findDebugFile, type LocateOptions } from "./locate.ts";

/** A frame as the sidecar has it: addresses as hex strings. */
export interface NamedFrame {
  /** The module's path. */
  module: string | null;
  /** The module's GNU build-id. */
  build_id: string | null;
  /** The PC's offset from the module's start, hex. */
  offset: string | null;
  /** The function, when named. */
  function: string | null;
  /** The PC's offset into it, hex. */
  function_offset: string | null;
  /** How the frame was found. */
  trust: string;
  /** The file the name came from, once symbolized here. */
  symbol_source?: string;
  /** The source file, from the debug file's line table. */
  file?: string;
  /** The source line. */
  line?: number;
  /** A C++ function's mangled name, when `function` is demangled. */
  linkage_name?: string;
  /**
   * The functions inlined at the PC, innermost first, each with the source
   * line it is at (the last one's caller is `function`, at `file:line`).
   */
  inlined?: InlinedFrame[];
}

/** A function inlined where a frame's PC is. */
export interface InlinedFrame {
  /** Its name. */
  function: string;
  /** Its source file, where known. */
  file?: string;
  /** Its source line. */
  line?: number;
}

/** Options for {@linkcode symbolizeFrames}. */
export type SymbolizeOptions = Omit<LocateOptions, "modulePath">;

/**
 * Names the frames that have a module, build-id and offset, from the
 * module's own file or its debug file: the function (a name the capture
 * found is kept), the source file and line, and the functions inlined
 * there; `symbol_source` says which file it was.
 * C++ names are demangled, the mangled one kept as `linkage_name`.
 *
 * @example A frame of a module this host does not have keeps no name
 * ```ts
 * import { symbolizeFrames } from "./symbolize.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = {
 *   module: "/nonexistent/prog", build_id: "0123456789abcdef", offset: "0x1139",
 *   function: null, function_offset: null, trust: "context",
 * };
 * const dir = await Deno.makeTempDir();
 * const [named] = await symbolizeFrames([frame], { systemDebugDir: dir });
 * assert.equal(named!.function, null);
 * await Deno.remove(dir);
 * ```
 *
 * @param frames Frames, innermost first (the first is where the thread
 *   stopped; the others are return addresses).
 * @param options Where debug files are looked for.
 * @returns The frames, named where a file was found.
 */
export async function symbolizeFrames<T extends NamedFrame>(
  frames: readonly T[],
  options: SymbolizeOptions = {},
): Promise<T[]> {
  return (await nameFrames(frames, options)).map(demangled);
}

/** A frame whose C++ name is demangled, the mangled one kept. */
function demangled<T extends NamedFrame>(frame: T): T {
  if (frame.function === null || frame.linkage_name !== undefined) return frame;
  const text = demangle(frame.function);
  return text === undefined
    ? frame
    : { ...frame, function: text, linkage_name: frame.function };
}

async function nameFrames<T extends NamedFrame>(
  frames: readonly T[],
  options: SymbolizeOptions,
): Promise<T[]> {
  const images = new Map<string, Promise<Loaded | undefined>>();
  const named: T[] = [];
  for (const [index, frame] of frames.entries()) {
    if (frame.build_id === null || frame.offset === null) {
      named.push(frame);
      continue;
    }
    let image = images.get(frame.build_id);
    if (image === undefined) {
      image = load(frame.build_id, frame.module, options);
      images.set(frame.build_id, image);
    }
    const loaded = await image;
    const symbols = loaded?.image.symbols;
    if (loaded === undefined || symbols === undefined) {
      named.push(frame);
      continue;
    }
    const at = BigInt(frame.offset) - loaded.image.bias;
    // A return address: the call is the byte before it.
    const exact = index === 0 || frame.trust === "context";
    const lookup = exact ? at : at - 1n;
    const found = symbols.lookup(lookup);
    let source: { file: string; line: number } | undefined = loaded.lines
      ?.lookup(lookup);
    const info = loaded.info?.(lookup);
    const outer = info?.scopes.at(-1);
    // The capture's name stays; a file here names what it could not.
    const name = frame.function ?? found?.name ??
      (outer?.inlined ? undefined : outer?.function);
    if (name === undefined) {
      named.push(frame);
      continue;
    }
    // Inlined functions, innermost first: each is at the line its inner
    // one was called from; the function itself at the outermost's call.
    const inlined: InlinedFrame[] = [];
    for (const scope of info?.scopes ?? []) {
      if (!scope.inlined) break;
      inlined.push({
        function: demangle(scope.function) ?? scope.function,
        ...(source === undefined
          ? {}
          : { file: source.file, line: source.line }),
      });
      const file = scope.callFile === undefined
        ? undefined
        : info?.files?.[scope.callFile];
      source = file === undefined || scope.callLine === undefined
        ? undefined
        : { file, line: scope.callLine };
    }
    named.push({
      ...frame,
      function: name,
      function_offset: frame.function !== null
        ? frame.function_offset
        : found === undefined
        ? null
        : `0x${(found.offset + (exact ? 0n : 1n)).toString(16)}`,
      symbol_source: loaded.path,
      ...(source === undefined ? {} : { file: source.file, line: source.line }),
      ...(inlined.length > 0 ? { inlined } : {}),
    });
  }
  return named;
}

interface Loaded {
  path: string;
  image: ModuleImage;
  lines?: LineTable;
  /** The functions an address is in, and the file names of their unit. */
  info?: (
    address: bigint,
  ) => (UnitScopes & { files?: readonly string[] }) | undefined;
}

/** The module's own file with that build-id, else its debug file, loaded. */
async function load(
  buildId: string,
  module: string | null,
  options: SymbolizeOptions,
): Promise<Loaded | undefined> {
  // The debug file first: a stripped module keeps only `.dynsym`.
  const candidates: string[] = [];
  const debug = await findDebugFile(buildId, {
    ...options,
    ...(module?.startsWith("/") ? { modulePath: module } : {}),
  });
  if (debug !== undefined) candidates.push(debug.path);
  if (module?.startsWith("/") && await hasBuildId(module, buildId)) {
    candidates.push(module);
  }
  for (const path of candidates) {
    try {
      using file = await openRegularFile(path, { noFollow: true });
      const image = await loadModuleFile(file, { path, start: 0n });
      const debug = await readDebugSections(file).catch(() => undefined);
      if (image.symbols === undefined && debug?.info === undefined) continue;
      const loaded: Loaded = { path, image };
      if (debug?.lines !== undefined) loaded.lines = debug.lines;
      const info = debug?.info;
      if (info !== undefined) {
        loaded.info = (address) => {
          try {
            const found = info.scopes(address);
            if (found === undefined) return undefined;
            const files = found.lineOffset === undefined
              ? undefined
              : debug?.lines?.filesOf(found.lineOffset);
            return files === undefined ? found : { ...found, files };
          } catch {
            return undefined; // Malformed entries: the symbol table's name.
          }
        };
      }
      return loaded;
    } catch {
      // The next candidate.
    }
  }
  return undefined;
}

/** Largest `.debug_line` (or string table) read. */
const MAX_LINE_SECTION = 64 << 20;

/** The file's line table and debugging entries, where it has them. */
async function readDebugSections(
  file: Deno.FsFile,
): Promise<{ lines?: LineTable; info?: DebugInfo }> {
  const elf = await readElf(file);
  const is64 = elf.header.class === 64;
  const { littleEndian } = elf.header;
  const read = async (name: string) => {
    const section = findSection(elf, name);
    if (
      section === undefined || section.type === SHT_NOBITS ||
      section.size === 0 || section.size > MAX_LINE_SECTION
    ) return undefined;
    return sectionContents(
      await readElfAt(file, section.offset, section.size),
      { compressed: (section.flags & 0x800n) !== 0n, is64, littleEndian },
    );
  };
  const result: { lines?: LineTable; info?: DebugInfo } = {};
  const str = await read(".debug_str");
  const lineStr = await read(".debug_line_str");
  const line = await read(".debug_line");
  if (line !== undefined) {
    result.lines = new LineTable({
      line,
      ...(lineStr === undefined ? {} : { lineStr }),
      ...(str === undefined ? {} : { str }),
    }, { is64, littleEndian });
  }
  const info = await read(".debug_info");
  const abbrev = await read(".debug_abbrev");
  if (info !== undefined && abbrev !== undefined) {
    const sections: DebugInfoSections = { info, abbrev };
    const optional = [
      ["str", str],
      ["lineStr", lineStr],
      ["strOffsets", await read(".debug_str_offsets")],
      ["addr", await read(".debug_addr")],
      ["ranges", await read(".debug_ranges")],
      ["rnglists", await read(".debug_rnglists")],
    ] as const;
    for (const [key, bytes] of optional) {
      if (bytes !== undefined) sections[key] = bytes;
    }
    result.info = new DebugInfo(sections, { littleEndian });
  }
  return result;
}
