/**
 * The README's generated parts against the flag table: `deno task docs`
 * would write exactly the README that is checked in. This one test runs a
 * subprocess, `deno fmt` through `Deno.execPath()`.
 */
import assert from "node:assert/strict";
import { generatedReadme, regenerate } from "../../../scripts/docs.ts";
import { optionTable } from "../../../lib/cli/mod.ts";
import { ROOT, tempDir } from "../_temp.ts";

const README = `${ROOT}README.md`;
const PARTS = ["usage", "options", "store options"];

Deno.test("README.md's generated parts are what deno task docs makes from lib/cli/flags.ts", async () => {
  const text = await Deno.readTextFile(README);
  assert.ok(
    await generatedReadme(README) === text,
    "README.md differs from lib/cli/flags.ts: run deno task docs",
  );
});

Deno.test("regenerate() fills each part between its markers and is idempotent", () => {
  const readme = [
    "# Title",
    ...PARTS.flatMap((name) => [
      `<!-- generated: ${name} (deno task docs) -->`,
      "stale text",
      `<!-- end: ${name} -->`,
      "kept between parts",
    ]),
  ].join("\n");
  const once = regenerate(readme);
  assert.equal(regenerate(once), once);
  assert.ok(!once.includes("stale text"));
  assert.equal(once.split("kept between parts").length, PARTS.length + 1);
  assert.ok(once.includes(optionTable("main")));
  assert.ok(once.includes(optionTable("store")));
  assert.ok(once.includes("```\n" + optionTable("usage") + "\n```"));
  assert.ok(once.startsWith("# Title\n"));
});

Deno.test("regenerate() says which marker is missing", () => {
  assert.throws(
    () => regenerate("# no markers\n"),
    /expected the markers '<!-- generated: usage \(deno task docs\) -->' and '<!-- end: usage -->', found neither/,
  );
  assert.throws(
    () => regenerate("<!-- generated: usage (deno task docs) -->\nno end\n"),
    /found only the first/,
  );
});

Deno.test("generatedReadme() notices a table that no longer matches the flags, and restores it", async () => {
  await using dir = await tempDir();
  const text = await Deno.readTextFile(README);
  const line = text.split("\n").find((l) => l.startsWith("| `--max-use SIZE`"));
  assert.ok(line !== undefined, "the README has the --max-use row");
  const tampered = text.replace(line, line.replace("| 10% of", "| 50% of"));
  assert.notEqual(tampered, text);
  const copy = `${dir.path}/README.md`;
  await Deno.writeTextFile(copy, tampered);
  const regenerated = await generatedReadme(copy);
  assert.notEqual(regenerated, tampered);
  assert.equal(regenerated, await generatedReadme(README));
});
