/**
 * Workers that fail, for real: a copy of the source tree whose worker
 * module is missing (what a build without `deno compile --include` ships),
 * does not compile, throws on every task, or reports every task failed.
 * The copy's `main.ts` runs exactly as `mainCommand()` runs ours; the
 * copy's `lib/compress/parallel_deflate.ts` is imported for `fallback`.
 */
import assert from "node:assert/strict";
import { extraFieldEnd, readGzipIndex } from "../../lib/compress/mod.ts";
import { parallelCompress } from "../../lib/compress/mod.ts";
import { openSpillFile } from "../../lib/fs/mod.ts";
import { PERMISSION_FLAGS } from "../../scripts/permissions.ts";
import {
  fileDigest,
  listDir,
  mixed,
  pythonInflate,
  ROOT,
  runMain,
  type RunOptions,
  type RunResult,
  runTool,
  tempDir,
} from "../_helpers.ts";

const MiB = 1 << 20;

/** What replaces a worker module in the copy; undefined deletes it. */
const FAULTS = {
  missing: undefined,
  "a syntax error": "export const broken = ;\n",
  "throwing on every task": `self.onmessage = () => {
  throw new Error("injected failure");
};
`,
  "reporting every task failed": `self.onmessage = (event) => {
  const { id, data } = event.data;
  const buffer = data instanceof ArrayBuffer ? data : data.buffer;
  self.postMessage({ id, error: "injected failure", data: buffer }, [buffer]);
};
`,
} as const;
type Fault = keyof typeof FAULTS;

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) {
      await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    } else if (entry.isFile) {
      await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
    }
  }
}

/** A copy of main.ts, deno.json and lib/ with one worker module broken. */
async function brokenCopy(
  dir: string,
  worker: "_deflate_worker.ts" | "_inflate_worker.ts" | undefined,
  fault: Fault,
): Promise<string> {
  const copy = `${dir}/src-${crypto.randomUUID().slice(0, 8)}`;
  await copyTree(`${ROOT}lib`, `${copy}/lib`);
  await Deno.copyFile(`${ROOT}main.ts`, `${copy}/main.ts`);
  await Deno.copyFile(`${ROOT}deno.json`, `${copy}/deno.json`);
  if (worker !== undefined) {
    const replacement = FAULTS[fault];
    if (replacement === undefined) {
      await Deno.remove(`${copy}/lib/compress/${worker}`);
    } else {await Deno.writeTextFile(
        `${copy}/lib/compress/${worker}`,
        replacement,
      );}
  }
  return copy;
}

/** Runs the copy's main.ts as `mainCommand()` runs ours. */
async function runCopy(
  copy: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return await runTool(
    Deno.execPath(),
    ["run", ...PERMISSION_FLAGS, `${copy}/main.ts`, ...args],
    { ...options, env: { NO_COLOR: "1", ...options.env } },
  );
}

/** Exit 1, one line `gzcoredump: Cannot ...`, and nothing left behind. */
async function assertCleanFailure(
  result: RunResult,
  dir: string,
  expected: string[],
  what: string,
): Promise<string> {
  assert.equal(result.code, 1, `${what}: exit code; stderr ${result.stderr}`);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${what}: one stderr line:\n${result.stderr}`);
  assert.match(lines[0]!, /^gzcoredump: Cannot /, what);
  assert.doesNotMatch(result.stderr, /\n\s+at |error: Uncaught/, what);
  assert.deepEqual(await listDir(dir), expected, `${what}: files left`);
  return lines[0]!;
}

Deno.test("-c -f with a compression worker that is missing, broken or failing: exit 1, one line, no output", async () => {
  await using dir = await tempDir();
  const work = `${dir.path}/work`;
  await Deno.mkdir(work);
  await Deno.writeFile(`${work}/in`, mixed(5 * MiB, { zeros: false }));
  // The copy itself works: what fails below is the fault alone.
  const intact = await brokenCopy(dir.path, undefined, "missing");
  const ok = await runCopy(intact, [
    "-c",
    "-f",
    `${work}/in`,
    "-o",
    `${work}/ok.gz`,
    "-j",
    "2",
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  await Deno.remove(`${work}/ok.gz`);
  for (const fault of Object.keys(FAULTS) as Fault[]) {
    const copy = await brokenCopy(dir.path, "_deflate_worker.ts", fault);
    for (const format of ["gz", "zlib"]) {
      const result = await runCopy(copy, [
        "-c",
        "-f",
        `${work}/in`,
        "-o",
        `${work}/out`,
        "-F",
        format,
        "-j",
        "2",
      ]);
      const line = await assertCleanFailure(
        result,
        work,
        ["in"],
        `${fault}, ${format}`,
      );
      assert.match(
        line,
        /compression worker lib\/compress\/_deflate_worker\.ts/,
        line,
      );
      if (fault === "missing") {
        assert.match(
          line,
          /^gzcoredump: Cannot start the compression worker lib\/compress\/_deflate_worker\.ts: Module not found .*; expected it to be embedded in the binary \(deno compile --include\)$/,
        );
      }
      if (fault !== "missing" && fault !== "a syntax error") {
        assert.match(line, /injected failure/, line);
      }
    }
  }
});

Deno.test("-d -f of an indexed file with a decompression worker that is missing, broken or failing: exit 1, one line, no output", async () => {
  await using dir = await tempDir();
  const work = `${dir.path}/work`;
  await Deno.mkdir(work);
  // The first 16 MiB are inflated in the main thread while the workers
  // start; an input of 16 MiB or less starts none.
  const inputs: [string, number][] = [["in", 24 * MiB], ["small", 16 * MiB]];
  for (const [name, size] of inputs) {
    await Deno.writeFile(`${dir.path}/${name}`, mixed(size, { zeros: false }));
    const made = await runMain([
      "-c",
      "-f",
      `${dir.path}/${name}`,
      "-o",
      `${work}/${name}.gz`,
      "-j",
      "2",
    ]);
    assert.equal(made.code, 0, made.stderr);
    const gz = await Deno.readFile(`${work}/${name}.gz`);
    assert.ok(
      readGzipIndex(gz.subarray(0, extraFieldEnd(gz)), gz.length),
      `${name}: the input carries a chunk index`,
    );
  }
  const small = await fileDigest(`${dir.path}/small`);
  for (const fault of Object.keys(FAULTS) as Fault[]) {
    const copy = await brokenCopy(dir.path, "_inflate_worker.ts", fault);
    const done = await runCopy(copy, [
      "-d",
      "-f",
      `${work}/small.gz`,
      "-o",
      `${dir.path}/small.out`,
      "-j",
      "2",
    ]);
    assert.equal(done.code, 0, `${fault}, 16 MiB: ${done.stderr}`);
    assert.equal(await fileDigest(`${dir.path}/small.out`), small, fault);
    await Deno.remove(`${dir.path}/small.out`);
    const result = await runCopy(copy, [
      "-d",
      "-f",
      `${work}/in.gz`,
      "-o",
      `${work}/out`,
      "-j",
      "2",
    ]);
    const line = await assertCleanFailure(
      result,
      work,
      ["in.gz", "small.gz"],
      fault,
    );
    if (fault === "reporting every task failed") {
      assert.match(line, /corrupt deflate data in chunks? .*injected failure/);
    } else {
      assert.match(
        line,
        /decompression worker lib\/compress\/_inflate_worker\.ts/,
      );
    }
  }
});

Deno.test("parallelCompress() fallback: inline goes on in this thread with one warning, error fails in one line", async () => {
  await using dir = await tempDir();
  const data = mixed(6 * MiB + 777);
  const expected = new Uint8Array(
    await new Response(
      parallelCompress(ReadableStream.from([data]), { inline: true }),
    ).arrayBuffer(),
  );
  for (const fault of Object.keys(FAULTS) as Fault[]) {
    const copy = await brokenCopy(dir.path, "_deflate_worker.ts", fault);
    const module: typeof import("../../lib/compress/mod.ts") = await import(
      `file://${copy}/lib/compress/parallel_deflate.ts`
    );
    // With blocks waiting in a spill file too: they are deflated here.
    for (const spilling of [false, true]) {
      using spill = spilling
        ? openSpillFile(dir.path, { limit: 64 * MiB })
        : undefined;
      const warnings: string[] = [];
      const inline = module.parallelCompress(ReadableStream.from([data]), {
        jobs: 2,
        fallback: "inline",
        onWarning: (message) => warnings.push(message),
        ...(spill === undefined ? {} : { spill }),
      });
      if (fault === "throwing on every task") {
        // The worker died holding the blocks: an error, never wrong data.
        const error = await new Response(inline).arrayBuffer().then(
          () => undefined,
          (error: unknown) => error,
        );
        assert.ok(error instanceof module.WorkerFailedError, String(error));
        // With a spill, the first block is deflated here (the workers are
        // still starting): the first block lost is the second.
        const first = spilling ? MiB : 0;
        assert.match(
          error.message,
          new RegExp(
            `^Cannot compress bytes ${first} to ${
              first + MiB
            } of the input: the compression worker lib/compress/_deflate_worker\\.ts failed with Error: injected failure and did not hand them back`,
          ),
        );
        assert.doesNotMatch(error.message, /\n/);
      } else {
        const bytes = new Uint8Array(await new Response(inline).arrayBuffer());
        assert.deepEqual(
          bytes,
          expected,
          `${fault}${spilling ? ", spilling" : ""}: the same bytes`,
        );
      }
      // No warning of a fallback that did not happen.
      assert.equal(
        warnings.length,
        fault === "throwing on every task" ? 0 : 1,
        `${fault}: ${warnings.join(" | ")}`,
      );
      for (const warning of warnings) {
        assert.match(
          warning,
          /^the compression workers failed \(lib\/compress\/_deflate_worker\.ts: .+\); compressed in the main thread instead$/,
        );
      }
    }
    const failing = module.parallelCompress(ReadableStream.from([data]), {
      jobs: 2,
    });
    const error = await new Response(failing).arrayBuffer().then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(error instanceof module.WorkerFailedError, `${fault}: ${error}`);
    assert.match(error.message, /^Cannot .*lib\/compress\/_deflate_worker\.ts/);
    assert.doesNotMatch(error.message, /\n/);
  }
});

Deno.test({
  name:
    "capture with the compression worker missing stores the whole core, compressed in the main thread, and says so",
  async fn() {
    await using dir = await tempDir();
    const store = `${dir.path}/store`;
    const core = mixed(5 * MiB);
    await Deno.writeFile(`${dir.path}/core`, core);
    const copy = await brokenCopy(dir.path, "_deflate_worker.ts", "missing");
    const result = await runCopy(copy, ["-c", "-p", store, "-a", "x"], {
      stdin: { path: `${dir.path}/core` },
    });
    assert.equal(result.code, 0, result.stderr);
    const names = await listDir(store);
    const archive = names.find((n) => n.endsWith(".gz"));
    assert.ok(archive, `no archive in ${names.join(", ")}`);
    assert.equal(
      await pythonInflate(`${store}/${archive}`, 31),
      await fileDigest(`${dir.path}/core`),
    );
    const json = names.find((n) => n.endsWith(".json"))!;
    const meta = JSON.parse(await Deno.readTextFile(`${store}/${json}`));
    assert.ok(
      (meta.warnings as string[]).some((w) =>
        /compression workers failed .*lib\/compress\/_deflate_worker\.ts/.test(
          w,
        )
      ),
      `warnings: ${JSON.stringify(meta.warnings)}`,
    );
  },
});

Deno.test("capture whose modules do not load: exit 1, one line that says the core is lost", async () => {
  await using dir = await tempDir();
  const copy = await brokenCopy(dir.path, undefined, "missing");
  await Deno.writeTextFile(
    `${copy}/lib/capture/_trace.ts`,
    FAULTS["a syntax error"],
  );
  const result = await runCopy(copy, ["-c", "-p", `${dir.path}/store`], {
    stdin: mixed(MiB),
  });
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^gzcoredump: lost core: .*_trace\.ts/);
  assert.doesNotMatch(result.stderr, /\n\s+at |error: Uncaught/);
});
