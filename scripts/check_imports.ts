/**
 * The import rule of `lib/`, checked (`deno task check` runs it): each
 * concept is a folder, and imports point down the layers only:
 *
 *     cli → capture → store → debuginfo → unwind → elf, compress → fs,
 *     process → util
 *
 * A module may import modules of its own folder (and its subfolders), and
 * of a lower layer through that folder's `mod.ts` only. Nothing in `lib/`
 * imports `main.ts` or anything above `lib/` but `deno.json` (the version).
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";

/** The layers, lowest first; folders of one layer do not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ["util"],
  ["fs", "process"],
  ["elf", "compress"],
  ["unwind"],
  ["debuginfo"],
  ["store"],
  ["capture"],
  ["cli"],
];

/** One import that breaks the rule. */
export interface ImportViolation {
  /** The importing module, relative to the root. */
  file: string;
  /** The specifier as written. */
  specifier: string;
  /** What the rule expected, and what was found. */
  reason: string;
}

const SPECIFIER =
  /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)["'](\.{1,2}\/[^"']+\.(?:ts|json))["']/g;

function layerOf(folder: string): number {
  return LAYERS.findIndex((layer) => layer.includes(folder));
}

/**
 * Checks every module under `lib` of `root` against the rule.
 *
 * @example The project itself keeps the rule
 * ```ts
 * import { checkImports } from "./check_imports.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(await checkImports(new URL("..", import.meta.url).pathname), []);
 * ```
 *
 * @param root The project's root directory.
 * @returns The violations, empty when the rule holds.
 */
export async function checkImports(root: string): Promise<ImportViolation[]> {
  const lib = resolve(root, "lib");
  const violations: ImportViolation[] = [];
  for await (const file of walk(lib)) {
    const text = await Deno.readTextFile(file);
    const from = relative(lib, file).split("/");
    const own = from.length > 1 ? from[0]! : "";
    const where = relative(root, file);
    if (own === "" || layerOf(own) < 0) {
      violations.push({
        file: where,
        specifier: "",
        reason: `expected every module in a folder of ${
          LAYERS.flat().join(", ")
        }, found it in ${own === "" ? "lib/ itself" : `lib/${own}/`}`,
      });
      continue;
    }
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = match[1]!;
      const target = resolve(dirname(file), specifier);
      const to = relative(lib, target).split("/");
      if (target === resolve(root, "deno.json")) continue;
      if (to[0] === "..") {
        violations.push({
          file: where,
          specifier,
          reason: "expected an import within lib/, found one outside it",
        });
        continue;
      }
      const folder = to.length > 1 ? to[0]! : "";
      if (folder === own) continue;
      const layer = layerOf(folder);
      if (layer < 0 || layer >= layerOf(own)) {
        violations.push({
          file: where,
          specifier,
          reason: `expected lib/${own}/ to import only from lower layers (${
            LAYERS.slice(0, Math.max(0, layerOf(own))).flat().join(", ") ||
            "none"
          }), found lib/${folder}/`,
        });
      } else if (to.length !== 2 || to[1] !== "mod.ts") {
        violations.push({
          file: where,
          specifier,
          reason: `expected lib/${folder}/mod.ts (the folder's face), found ${
            to.join("/")
          }`,
        });
      }
    }
  }
  return violations;
}

async function* walk(directory: string): AsyncGenerator<string> {
  const names: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(directory)) names.push(entry);
  names.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of names) {
    const path = join(directory, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

if (import.meta.main) {
  const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
  const violations = await checkImports(root);
  const lines = violations.map((v) =>
    `${v.file}: import "${v.specifier}": ${v.reason}\n`
  );
  if (violations.length > 0) {
    lines.push(`${violations.length} import(s) break the rule of lib/\n`);
    await Deno.stderr.write(new TextEncoder().encode(lines.join("")));
    Deno.exit(1);
  }
}
