import assert from "node:assert/strict";
import { fileDigest, mixed, ROOT, runTool, tempDir } from "../_helpers.ts";

async function build(env: Record<string, string> = {}) {
  return await runTool(Deno.execPath(), ["task", "build"], {
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
  });
}

Deno.test("deno task build refuses a DENORT_BIN that is not a file, saying what it expected", async () => {
  const result = await build({ DENORT_BIN: "/nonexistent/denort" });
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /build: DENORT_BIN is '\/nonexistent\/denort' but that is not a readable file .*expected the denort binary of Deno \d+\.\d+\.\d+/,
  );
});

Deno.test("deno task build makes a binary that runs, or says plainly that denort is missing", async () => {
  const result = await build();
  if (result.code === 0) {
    const version = await runTool(`${ROOT}bin/gzcoredump`, ["--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(
      new TextDecoder().decode(version.stdout),
      /^gzcoredump \d+\.\d+\.\d+/,
    );
    // Both workers are embedded: compress and decompress several blocks.
    await using dir = await tempDir();
    const input = `${dir.path}/mixed`;
    await Deno.writeFile(input, mixed(9_000_000));
    for (
      const args of [
        ["-c", "-j", "2", "-f", input, "-o", `${input}.gz`],
        ["-d", "-j", "2", "-f", `${input}.gz`, "-o", `${input}.out`],
      ]
    ) {
      const run = await runTool(`${ROOT}bin/gzcoredump`, args);
      assert.equal(run.code, 0, run.stderr);
    }
    assert.equal(await fileDigest(`${input}.out`), await fileDigest(input));
  } else {
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /build: cannot build bin\/gzcoredump: 'deno compile' could not get its runtime base \(denort/,
    );
    assert.match(result.stderr, /Set DENORT_BIN to a local denort binary/);
    assert.match(result.stderr, /sh install\.sh --launcher/);
    assert.doesNotMatch(result.stderr, /Stack backtrace/);
    // Nothing half-built is left where install.sh would take it.
    assert.equal(
      await Deno.stat(`${ROOT}bin/gzcoredump`).then(() => true, () => false),
      false,
    );
  }
});
