/**
 * The demangler against binutils' c++filt, on every C++ name libstdc++
 * exports, and on a real C++ crash named by `info --symbolize`.
 */

import assert from "node:assert/strict";
import { demangle } from "../../lib/debuginfo/mod.ts";
import { check, runMain } from "../_helpers.ts";
import { unwindFixtures } from "../_unwind_fixtures.ts";

/** c++filt of each name, one per line, the output read as it comes. */
async function cxxfilt(names: string[]): Promise<string[]> {
  const child = new Deno.Command("c++filt", {
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${names.join("\n")}\n`));
  await writer.close();
  return new TextDecoder().decode((await output).stdout).trimEnd().split("\n");
}

Deno.test("demangle() gives c++filt's text for every C++ name libstdc++ exports", async () => {
  const library = (await check("g++", ["-print-file-name=libstdc++.so"]))
    .trim();
  const names = [
    ...new Set(
      (await check("nm", ["-D", "--defined-only", library])).split("\n")
        .map((line) => line.split(" ")[2]?.replace(/@.*$/, "") ?? "")
        .filter((name) => name.startsWith("_Z")),
    ),
  ];
  assert.ok(names.length > 3000, `${names.length} names`);
  const expected = await cxxfilt(names);
  const wrong = names.filter((name, i) => demangle(name) !== expected[i]);
  assert.deepEqual(
    wrong.slice(0, 10),
    [],
    `${wrong.length} of ${names.length}`,
  );
  // Not mangled, or not whole: no guess.
  for (const name of ["main", "_Z", "_ZN3foo", "_Z1fv.", "_ZZ"]) {
    assert.equal(demangle(name), undefined, name);
  }
});

Deno.test("info --symbolize demangles a C++ crash's frames and keeps the mangled names", async () => {
  const fixture = (await unwindFixtures()).find((f) =>
    f.name === "x86_64-O2-throw"
  )!;
  const result = await runMain([
    "info",
    fixture.core,
    "--symbolize",
    "--json",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const frames = JSON.parse(new TextDecoder().decode(result.stdout))
    .backtrace[0].frames as { function: string; linkage_name?: string }[];
  const terminate = frames.find((f) => f.linkage_name === "_ZSt9terminatev");
  assert.equal(terminate?.function, "std::terminate()");
  const thrower = frames.find((f) =>
    f.linkage_name?.startsWith("_Z13throw_level_bi")
  );
  assert.match(thrower!.function, /^throw_level_b\(int\)/);
  // C names stay as they are.
  assert.ok(frames.some((f) => f.function === "main" && !f.linkage_name));
  // Each mangled name demangles as c++filt does.
  const mangled = frames.flatMap((f) => f.linkage_name ? [f] : []);
  const expected = await cxxfilt(mangled.map((f) => f.linkage_name!));
  assert.deepEqual(mangled.map((f) => f.function), expected);
});
