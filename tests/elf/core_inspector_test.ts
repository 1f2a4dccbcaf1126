import assert from "node:assert/strict";
import { CoreInspectorStream, type CoreReport } from "../../lib/elf/mod.ts";
import { archFixtures } from "../_fixtures.ts";
import {
  buildCrasher,
  kernelCore,
  liveCore,
  seededRandom,
  tempDir,
} from "../_helpers.ts";
import { euReadelfNotes, euUnstripModules } from "../_readelf.ts";

/** Streams `bytes` in the given chunks; returns the report and the output. */
async function inspect(
  chunks: Uint8Array[],
): Promise<{ report: CoreReport; output: Uint8Array }> {
  const inspector = new CoreInspectorStream();
  const out: Uint8Array[] = [];
  await ReadableStream.from(chunks).pipeThrough(inspector).pipeTo(
    new WritableStream({ write: (chunk) => void out.push(chunk) }),
  );
  const output = new Uint8Array(out.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of out) {
    output.set(chunk, at);
    at += chunk.length;
  }
  return { report: inspector.report, output };
}

/** The report as plain data, for comparisons. */
function plain(report: CoreReport): unknown {
  return JSON.parse(
    JSON.stringify(
      report,
      (_, v) =>
        typeof v === "bigint"
          ? `0x${v.toString(16)}`
          : v instanceof Map
          ? [...v]
          : v,
    ),
  );
}

Deno.test("CoreInspectorStream finds every module and build-id eu-unstrip finds in a kernel core", async () => {
  await using dir = await tempDir();
  const program = await buildCrasher(dir.path);
  const core = await kernelCore(program, [], dir.path);
  const bytes = await Deno.readFile(core);
  const { report, output } = await inspect([bytes]);
  assert.deepEqual(output, bytes);
  assert.equal(report.error, undefined);
  assert.equal(report.size, bytes.length);
  assert.equal(report.expectedSize, bytes.length);
  assert.equal(report.truncated, false);
  const golden = await euUnstripModules(core);
  assert.deepEqual(
    report.modules.map((m) => [m.start, m.buildId]).sort(),
    golden.map((m) => [m.start, m.buildId]).sort(),
  );
  assert.equal(report.modules[0]!.path, program, "the executable comes first");
  assert.equal(
    report.buildId,
    golden.find((m) => m.start === report.modules[0]!.start)!.buildId,
  );
  const notes = await euReadelfNotes(core);
  assert.equal(report.notes?.process?.pid, notes.process?.pid);
  assert.equal(report.notes?.files.length, notes.files.length);
});

Deno.test("CoreInspectorStream completes gcore's notes-last layout from the file", async () => {
  await using dir = await tempDir();
  const core = await liveCore(dir.path);
  const bytes = await Deno.readFile(core);
  const inspector = new CoreInspectorStream();
  await ReadableStream.from([bytes]).pipeThrough(inspector).pipeTo(
    new WritableStream(),
  );
  using file = await Deno.open(core);
  await inspector.completeFrom(file);
  const golden = await euUnstripModules(core);
  assert.deepEqual(
    inspector.report.modules.map((m) => [m.start, m.buildId]).sort(),
    golden.map((m) => [m.start, m.buildId]).sort(),
  );
  assert.equal(inspector.report.notes?.threads.length, 1);
});

Deno.test("CoreInspectorStream gives the same report whatever the chunk boundaries", async () => {
  const fixture = (await archFixtures()).find((f) => f.arch === "x86_64")!;
  const bytes = await Deno.readFile(fixture.core);
  const { report: whole } = await inspect([bytes]);
  assert.ok(
    whole.modules.length >= 3,
    "a dynamic program maps several modules",
  );
  const expected = plain(whole);
  // Every boundary where the structure is: the header, the tables, the notes.
  const notes = whole.programs.filter((p) => p.type === 4);
  const end = Math.max(...notes.map((p) => p.offset + p.filesz)) + 64;
  for (let split = 0; split <= end; split++) {
    const { report } = await inspect([
      bytes.subarray(0, split),
      bytes.subarray(split),
    ]);
    assert.deepEqual(plain(report), expected, `split at ${split}`);
  }
  // And at every byte of the module pages' first bytes, in three pieces.
  const small = await inspect(
    Array.from(
      { length: Math.ceil(end / 7) },
      (_, i) => bytes.subarray(i * 7, Math.min(end, i * 7 + 7)),
    ).concat([
      bytes.subarray(end),
    ]),
  );
  assert.deepEqual(plain(small.report), expected, "7-byte chunks");
});

Deno.test("CoreInspectorStream reports a truncated core as truncated, with the size it should have", async () => {
  const fixture = (await archFixtures()).find((f) => f.arch === "x86_64")!;
  const bytes = await Deno.readFile(fixture.core);
  const { report: whole } = await inspect([bytes]);
  for (
    const cut of [
      0,
      10,
      63,
      64,
      200,
      1000,
      5000,
      bytes.length >> 1,
      bytes.length - 1,
    ]
  ) {
    const { report, output } = await inspect([bytes.subarray(0, cut)]);
    assert.deepEqual(
      output,
      bytes.subarray(0, cut),
      `cut at ${cut}: every byte passes`,
    );
    assert.equal(report.size, cut);
    if (cut < 64) {
      assert.match(
        report.error ?? "",
        cut === 0 ? /the core is empty/ : /expected at least an ELF header/,
      );
    } else {
      assert.equal(report.truncated, true, `cut at ${cut}`);
      // Before the program headers are in, only the header's tables count.
      const tables = whole.programs.length === report.programs.length;
      assert.ok(report.expectedSize! > cut, `cut at ${cut}`);
      if (tables) {
        assert.equal(report.expectedSize, bytes.length, `cut at ${cut}`);
      }
    }
  }
});

Deno.test("CoreInspectorStream never fails the stream: mutated and foreign input pass through unchanged", async () => {
  const random = seededRandom(1126);
  for (const fixture of await archFixtures()) {
    const original = await Deno.readFile(fixture.core);
    const { report } = await inspect([original]);
    const notes = report.programs.filter((p) => p.type === 4);
    const end = Math.max(...notes.map((p) => p.offset + p.filesz));
    for (let i = 0; i < 150; i++) {
      const bytes = original.slice(0, Math.max(end + 8192, 65536));
      for (let f = 1 + Math.floor(random() * 6); f > 0; f--) {
        const at = Math.floor(random() * end);
        bytes[at] = Math.floor(random() * 256);
      }
      const { output } = await inspect([
        bytes.subarray(0, 1000),
        bytes.subarray(1000),
      ]);
      assert.deepEqual(output, bytes, `${fixture.arch} mutation ${i}`);
    }
  }
  const text = new TextEncoder().encode(
    "not a core at all, just text\n".repeat(100),
  );
  const foreign = await inspect([text]);
  assert.deepEqual(foreign.output, text);
  assert.match(
    foreign.report.error!,
    /found magic 6e 6f 74 20 at offset 0x0, expected 7f 45 4c 46/,
  );
});
