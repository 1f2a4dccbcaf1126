/**
 * `deno task build`: compiles `main.ts` into the self-contained executable
 * `bin/gzcoredump` with the permissions in `permissions.ts`.
 *
 * `deno compile` needs its runtime base (denort) for the target: it is
 * downloaded from the internet unless `DENORT_BIN` names a local copy. Where
 * neither works, this says so plainly and exits 1.
 *
 * @module
 */

import { PERMISSION_FLAGS } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;
const output = `${root}bin/gzcoredump`;
const denort = Deno.env.get("DENORT_BIN");
if (denort !== undefined) {
  try {
    const info = await Deno.stat(denort);
    if (!info.isFile) throw new Error("not a regular file");
  } catch (error) {
    fail(
      `DENORT_BIN is '${denort}' but that is not a readable file (${
        error instanceof Error ? error.message : error
      }), expected the denort binary of Deno ${Deno.version.deno}`,
    );
  }
}
await Deno.mkdir(`${root}bin`, { recursive: true });
const result = await new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    ...PERMISSION_FLAGS,
    // The workers are loaded by URL at run time: embed them, and the pool
    // module each worker starts from (it imports the worker's module).
    "--include",
    `${root}lib/util/worker_pool.ts`,
    "--include",
    `${root}lib/compress/_deflate_worker.ts`,
    "--include",
    `${root}lib/compress/_inflate_worker.ts`,
    "--output",
    output,
    `${root}main.ts`,
  ],
  cwd: root,
  env: { NO_COLOR: "1" },
  stdout: "inherit",
  stderr: "piped",
}).output();
const stderr = new TextDecoder().decode(result.stderr);
if (!result.success) {
  if (/denort|base binary|error sending request/i.test(stderr)) {
    fail(
      `cannot build bin/gzcoredump: 'deno compile' could not get its runtime base (denort ${Deno.version.deno}) and this machine cannot download it.\n` +
        `Set DENORT_BIN to a local denort binary of Deno ${Deno.version.deno} for this target, or build on a machine with internet access,\n` +
        `or install without a binary: 'sh install.sh --launcher' runs main.ts with the local Deno.\n` +
        `deno compile said: ${reason(stderr)}`,
    );
  }
  fail(`deno compile failed:\n${stderr}`);
}
await Deno.stderr.write(new TextEncoder().encode(stderr));

function fail(message: string): never {
  // deno-lint-ignore no-console
  console.error(`build: ${message}`);
  Deno.exit(1);
}

/** The most telling line of deno compile's error output. */
function reason(text: string): string {
  const lines = text.split("\n").map((line) => line.trim());
  return lines.find((line) => /error sending request|dns error/i.test(line)) ??
    lines.find((line) => /error/i.test(line)) ?? "";
}
