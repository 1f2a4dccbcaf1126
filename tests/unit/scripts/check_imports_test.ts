import assert from "node:assert/strict";
import {
  checkImports,
  type ImportViolation,
  LAYERS,
} from "../../../scripts/check_imports.ts";
import { ROOT, tempDir } from "../_temp.ts";

/** Writes `files` (path relative to the root → text) under `root`. */
async function project(
  root: string,
  files: Record<string, string>,
): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
}

/** A tree that keeps the rule: faces, own folders, subfolders, deno.json. */
const CLEAN: Record<string, string> = {
  "deno.json": `{ "version": "0.0.0" }\n`,
  "main.ts": `import "./lib/cli/mod.ts";\n`,
  "lib/util/mod.ts": `export * from "./a.ts";\n`,
  "lib/util/a.ts": `export const a = 1;\n`,
  "lib/fs/mod.ts": `import { a } from "../util/mod.ts";\nexport const f = a;\n`,
  "lib/process/mod.ts": `export type { A } from "../util/mod.ts";\n`,
  "lib/compress/mod.ts":
    `import "../fs/mod.ts";\nconst w = new URL("./_worker.ts", import.meta.url);\n`,
  "lib/compress/_worker.ts": `import { a } from "../util/mod.ts";\n`,
  "lib/store/mod.ts":
    `import { f } from "../fs/mod.ts";\nimport type { A } from "../process/mod.ts";\nimport "../compress/mod.ts";\n`,
  "lib/capture/mod.ts": `export * from "../store/mod.ts";\n`,
  "lib/cli/mod.ts":
    `export * from "./b.ts";\nexport * from "./commands/d.ts";\n`,
  "lib/cli/b.ts":
    `import { s } from "../store/mod.ts";\nimport v from "../../deno.json" with { type: "json" };\nconst later = await import("../capture/mod.ts");\n`,
  "lib/cli/commands/d.ts":
    `import { b } from "../b.ts";\nimport { f } from "../../fs/mod.ts";\n`,
  // Not relative: not the rule's business.
  "lib/util/node.ts": `import { join } from "node:path";\n`,
};

async function violations(
  extra: Record<string, string>,
): Promise<ImportViolation[]> {
  await using dir = await tempDir();
  await project(dir.path, { ...CLEAN, ...extra });
  return await checkImports(dir.path);
}

Deno.test("checkImports() finds nothing wrong in a tree that keeps the rule", async () => {
  assert.deepEqual(await violations({}), []);
});

Deno.test("checkImports() reports an upward import, naming file, specifier and the lower layers", async () => {
  const found = await violations({
    "lib/util/a.ts": `import { x } from "../cli/mod.ts";\n`,
    "lib/store/up.ts": `import { c } from "../capture/mod.ts";\n`,
  });
  assert.deepEqual(found, [
    {
      file: "lib/store/up.ts",
      specifier: "../capture/mod.ts",
      reason:
        "expected lib/store/ to import only from lower layers (util, fs, process, elf, compress, unwind, debuginfo), found lib/capture/",
    },
    {
      file: "lib/util/a.ts",
      specifier: "../cli/mod.ts",
      reason:
        "expected lib/util/ to import only from lower layers (none), found lib/cli/",
    },
  ]);
});

Deno.test("checkImports() reports a sideways import between folders of one layer", async () => {
  const found = await violations({
    "lib/fs/side.ts": `export * from "../process/mod.ts";\n`,
    "lib/elf/side.ts": `import type { Z } from "../compress/mod.ts";\n`,
  });
  assert.deepEqual(found.map((v) => [v.file, v.specifier]), [
    ["lib/elf/side.ts", "../compress/mod.ts"],
    ["lib/fs/side.ts", "../process/mod.ts"],
  ]);
  assert.match(found[1]!.reason, /lower layers \(util\), found lib\/process\//);
});

Deno.test("checkImports() reports an import past a folder's mod.ts, subfolders' faces included", async () => {
  const found = await violations({
    "lib/store/past.ts": `import { w } from "../fs/atomic_file.ts";\n`,
    "lib/cli/deep.ts": `import { s } from "../store/sub/mod.ts";\n`,
    "lib/capture/worker.ts":
      `const url = new URL("../compress/_worker.ts", import.meta.url);\n`,
  });
  assert.deepEqual(found, [
    {
      file: "lib/capture/worker.ts",
      specifier: "../compress/_worker.ts",
      reason:
        "expected lib/compress/mod.ts (the folder's face), found compress/_worker.ts",
    },
    {
      file: "lib/cli/deep.ts",
      specifier: "../store/sub/mod.ts",
      reason:
        "expected lib/store/mod.ts (the folder's face), found store/sub/mod.ts",
    },
    {
      file: "lib/store/past.ts",
      specifier: "../fs/atomic_file.ts",
      reason:
        "expected lib/fs/mod.ts (the folder's face), found fs/atomic_file.ts",
    },
  ]);
});

Deno.test("checkImports() reports imports out of lib/, dynamic ones too, and modules outside the folders", async () => {
  const found = await violations({
    "lib/cli/main.ts": `const m = await import("../../main.ts");\n`,
    "lib/loose.ts": `export const x = 1;\n`,
    "lib/extra/z.ts": `export const z = 1;\n`,
  });
  assert.deepEqual(found.map((v) => v.file), [
    "lib/cli/main.ts",
    "lib/extra/z.ts",
    "lib/loose.ts",
  ]);
  assert.equal(found[0]!.specifier, "../../main.ts");
  assert.match(
    found[0]!.reason,
    /expected an import within lib\/, found one outside it/,
  );
  assert.match(found[1]!.reason, /found it in lib\/extra\/$/);
  assert.match(found[2]!.reason, /found it in lib\/ itself$/);
});

Deno.test("LAYERS names each folder of lib/ once, and the project keeps the rule", async () => {
  const folders: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}lib`)) {
    if (entry.isDirectory) folders.push(entry.name);
  }
  const layered = LAYERS.flat();
  assert.equal(new Set(layered).size, layered.length, "no folder twice");
  assert.deepEqual([...layered].sort(), folders.sort());
  assert.deepEqual(await checkImports(ROOT), []);
});
