/**
 * Finds a module's debug file by its GNU build-id, in the order gdb and
 * elfutils look: directories given (`--debug-dir`), the system's
 * `/usr/lib/debug/.build-id/xx/rest.debug`, the module's `.gnu_debuglink`
 * beside it and under `/usr/lib/debug`, then debuginfod servers. Every
 * candidate must carry the build-id asked for.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { findSection, readElf, readElfAt, SHT_NOBITS } from "../elf/mod.ts";
import { openRegularFile } from "../fs/mod.ts";
import {
  type DebuginfodOptions,
  fetchDebuginfod,
  hasBuildId,
} from "./debuginfod.ts";

/** Where to look for debug files. */
export interface LocateOptions {
  /**
   * Directories searched first: `DIR/.build-id/xx/rest.debug`, then
   * `DIR/xx/rest.debug` (a debuginfod-style tree).
   *
   * @default {[]}
   */
  debugDirs?: readonly string[];
  /**
   * The system's debug directory.
   *
   * @default {"/usr/lib/debug"}
   */
  systemDebugDir?: string;
  /**
   * The module's own file, for its `.gnu_debuglink`.
   *
   * @default {undefined}
   */
  modulePath?: string;
  /**
   * Servers to ask last; undefined asks none.
   *
   * @default {undefined}
   */
  debuginfod?: DebuginfodOptions | undefined;
  /**
   * Where the reasons a place did not have it go.
   *
   * @default {[]}
   */
  problems?: string[];
}

/** A debug file found, and where. */
export interface DebugFile {
  /** Its path. */
  path: string;
  /** How it was found. */
  source: "debug-dir" | "system" | "debuglink" | "debuginfod";
}

/**
 * Finds the debug file of a build-id.
 *
 * @example Nothing to find without a build-id's file anywhere
 * ```ts
 * import { findDebugFile } from "./locate.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * assert.equal(await findDebugFile("0123456789abcdef", { debugDirs: [dir], systemDebugDir: dir }), undefined);
 * await Deno.remove(dir);
 * ```
 *
 * @param buildId The module's GNU build-id, lower-case hex.
 * @param options Where to look.
 * @returns The file, or undefined when none was found.
 */
export async function findDebugFile(
  buildId: string,
  options: LocateOptions = {},
): Promise<DebugFile | undefined> {
  if (!/^[0-9a-f]{4,128}$/.test(buildId)) return undefined;
  const system = options.systemDebugDir ?? "/usr/lib/debug";
  const head = buildId.slice(0, 2);
  const rest = buildId.slice(2);
  for (const dir of options.debugDirs ?? []) {
    for (
      const path of [
        join(dir, ".build-id", head, `${rest}.debug`),
        join(dir, head, `${rest}.debug`),
      ]
    ) {
      if (await hasBuildId(path, buildId)) return { path, source: "debug-dir" };
    }
  }
  const path = join(system, ".build-id", head, `${rest}.debug`);
  if (await hasBuildId(path, buildId)) return { path, source: "system" };
  if (options.modulePath !== undefined) {
    const link = await debugLink(options.modulePath);
    if (link !== undefined) {
      const beside = dirname(options.modulePath);
      for (
        const path of [
          join(beside, link),
          join(beside, ".debug", link),
          join(system, beside, link),
        ]
      ) {
        if (await hasBuildId(path, buildId)) {
          return { path, source: "debuglink" };
        }
      }
    }
  }
  if (options.debuginfod !== undefined) {
    const path = await fetchDebuginfod(buildId, "debuginfo", {
      ...options.debuginfod,
      problems: options.problems ?? [],
    });
    if (path !== undefined) return { path, source: "debuginfod" };
  }
  return undefined;
}

/** The file name `.gnu_debuglink` names; undefined without one. */
async function debugLink(path: string): Promise<string | undefined> {
  try {
    using file = await openRegularFile(path, { noFollow: true });
    const elf = await readElf(file);
    const section = findSection(elf, ".gnu_debuglink");
    if (
      section === undefined || section.type === SHT_NOBITS ||
      section.size < 6 || section.size > 4096
    ) return undefined;
    const bytes = await readElfAt(file, section.offset, section.size);
    const end = bytes.indexOf(0);
    if (end <= 0) return undefined;
    const name = new TextDecoder().decode(bytes.subarray(0, end));
    // A file name, not a path: nothing may lead elsewhere.
    return name.includes("/") || name === ".." ? undefined : name;
  } catch {
    return undefined;
  }
}
