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
}

/** Options for {@linkcode symbolizeFrames}. */
export type SymbolizeOptions = Omit<LocateOptions, "modulePath">;

/**
 * Names the frames that have a module, build-id and offset: a name from
 * the module's own file or its debug file replaces none (a name the
 * capture found is kept), and `symbol_source` says which file gave it.
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
    if (
      frame.function !== null || frame.build_id === null ||
      frame.offset === null
    ) {
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
    if (found === undefined) {
      named.push(frame);
      continue;
    }
    const source = loaded.lines?.lookup(lookup);
    named.push({
      ...frame,
      function: found.name,
      function_offset: `0x${(found.offset + (exact ? 0n : 1n)).toString(16)}`,
      symbol_source: loaded.path,
      ...(source === undefined ? {} : { file: source.file, line: source.line }),
    });
  }
  return named;
}

interface Loaded {
  path: string;
  image: ModuleImage;
  lines?: LineTable;
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
      if (image.symbols === undefined) continue;
      const lines = await readLineTable(file).catch(() => undefined);
      return lines === undefined ? { path, image } : { path, image, lines };
    } catch {
      // The next candidate.
    }
  }
  return undefined;
}

/** Largest `.debug_line` (or string table) read. */
const MAX_LINE_SECTION = 64 << 20;

/** The file's line table; undefined when it has none. */
async function readLineTable(
  file: Deno.FsFile,
): Promise<LineTable | undefined> {
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
  const line = await read(".debug_line");
  if (line === undefined) return undefined;
  const lineStr = await read(".debug_line_str");
  const str = await read(".debug_str");
  return new LineTable({
    line,
    ...(lineStr === undefined ? {} : { lineStr }),
    ...(str === undefined ? {} : { str }),
  }, { is64, littleEndian });
}
