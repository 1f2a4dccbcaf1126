/**
 * Writes the README's generated parts from the flag tables
 * (`lib/cli/flags.ts`): the usage lines, the table of options and the table
 * of store options, between `<!-- generated: NAME -->` and
 * `<!-- end: NAME -->` markers, formatted by `deno fmt`.
 *
 * `deno task docs` rewrites README.md; `--check` exits 1 when it differs
 * (a test runs that).
 *
 * @module
 */

import { optionTable } from "../lib/cli/mod.ts";

const PARTS = {
  usage: () => "```\n" + optionTable("usage") + "\n```",
  options: () => optionTable("main"),
  "store options": () => optionTable("store"),
} as const;

/**
 * The README with its generated parts made anew, before formatting.
 *
 * @param readme The README's text.
 * @returns The text with each part between its markers replaced.
 * @throws {Error} When a part's markers are missing.
 */
export function regenerate(readme: string): string {
  let text = readme;
  for (const [name, make] of Object.entries(PARTS)) {
    const open = `<!-- generated: ${name} (deno task docs) -->\n`;
    const close = `<!-- end: ${name} -->`;
    const start = text.indexOf(open);
    const end = text.indexOf(close, start);
    if (start === -1 || end === -1) {
      throw new Error(
        `Cannot regenerate the README: expected the markers '${open.trim()}' and '${close}', found ${
          start === -1 ? "neither" : "only the first"
        }`,
      );
    }
    text = text.slice(0, start + open.length) + make() + "\n" +
      text.slice(end);
  }
  return text;
}

/**
 * The README as `deno task docs` would write it: regenerated and formatted.
 *
 * @param path The README.
 * @returns Its text.
 */
export async function generatedReadme(path: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const copy = `${dir}/README.md`;
    await Deno.writeTextFile(copy, regenerate(await Deno.readTextFile(path)));
    const fmt = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--quiet", copy],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!fmt.success) {
      throw new Error(
        `Cannot format the README: deno fmt failed with ${
          new TextDecoder().decode(fmt.stderr).trim()
        }`,
      );
    }
    return await Deno.readTextFile(copy);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url).pathname;
  const text = await generatedReadme(path);
  if (Deno.args.includes("--check")) {
    if (text !== await Deno.readTextFile(path)) {
      await Deno.stderr.write(
        new TextEncoder().encode(
          "README.md's option tables differ from lib/cli/flags.ts: run deno task docs\n",
        ),
      );
      Deno.exit(1);
    }
  } else {
    await Deno.writeTextFile(path, text);
  }
}
