import assert from "node:assert/strict";
import { decompress } from "../../lib/compress/mod.ts";
import { parallelCompress } from "../../lib/compress/mod.ts";
import {
  check,
  crashCore,
  fileDigest,
  liveCore,
  mixed,
  pythonInflate,
  runTool,
  tempDir,
} from "../_helpers.ts";

async function compressFile(
  input: string,
  output: string,
  options: Parameters<typeof parallelCompress>[1],
): Promise<void> {
  using source = await Deno.open(input);
  using sink = await Deno.open(output, { write: true, createNew: true });
  await parallelCompress(source.readable, options).pipeTo(sink.writable);
}

Deno.test("parallelCompress() writes one gzip member that gzip, 7-Zip and python read whole", async () => {
  await using dir = await tempDir();
  const inputs = [await crashCore(dir.path), await liveCore(dir.path)];
  await Deno.writeFile(`${dir.path}/mixed`, mixed(9_876_543));
  inputs.push(`${dir.path}/mixed`);
  for (const input of inputs) {
    const digest = await fileDigest(input);
    for (const [jobs, level] of [[2, 3], [3, 1], [2, 9]] as const) {
      const gz = `${input}.${jobs}.${level}.gz`;
      await compressFile(input, gz, { jobs, level });
      await check("gzip", ["-t", gz]);
      assert.equal(
        await pythonInflate(gz, 31),
        digest,
        `${gz}: one complete member`,
      );
      // 7-Zip reads only the first member: it must hold everything.
      const sevenZip = await runTool("sh", [
        "-c",
        `7z e -so '${gz}' | cmp - '${input}'`,
      ]);
      assert.equal(sevenZip.code, 0, `${gz}: 7z ${sevenZip.stderr}`);
      const ours = `${gz}.out`;
      using source = await Deno.open(gz);
      using sink = await Deno.open(ours, { write: true, createNew: true });
      await decompress(source.readable).pipeTo(sink.writable);
      assert.equal(await fileDigest(ours), digest);
    }
  }
});

Deno.test("parallelCompress() writes one zlib stream that python reads whole", async () => {
  await using dir = await tempDir();
  const input = `${dir.path}/mixed`;
  await Deno.writeFile(input, mixed(7_000_001));
  const digest = await fileDigest(input);
  for (const level of [1, 3, 6]) {
    const zz = `${input}.${level}.zz`;
    await compressFile(input, zz, { format: "zlib", jobs: 2, level });
    assert.equal(await pythonInflate(zz, 15), digest, `level ${level}`);
    assert.notEqual((await runTool("7z", ["t", zz])).code, 0);
  }
});

Deno.test("parallelCompress() handles empty, tiny, block-sized and all-zero inputs", async () => {
  await using dir = await tempDir();
  const blockSize = 1 << 20;
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([42])],
    ["one block", mixed(blockSize)],
    ["one block and a byte", mixed(blockSize + 1)],
    ["zeros", new Uint8Array(10 * blockSize + 123)],
  ];
  for (const [what, data] of cases) {
    const input = `${dir.path}/${what.replaceAll(" ", "_")}`;
    await Deno.writeFile(input, data);
    for (const format of ["gzip", "zlib"] as const) {
      const out = `${input}.${format}`;
      await compressFile(input, out, { format, jobs: 2 });
      assert.equal(
        await pythonInflate(out, format === "gzip" ? 31 : 15),
        await fileDigest(input),
        `${what} ${format}`,
      );
    }
  }
  // Zero blocks are not deflated byte by byte: ten mebibytes of zeros take
  // ten copies of one prebuilt block, a few bytes each.
  const zeros = (await Deno.stat(`${dir.path}/zeros.gzip`)).size;
  assert.ok(zeros < 20_000, `${zeros} bytes for 10 MiB of zeros`);
});

Deno.test("parallelCompress() stores what will not shrink and deflates what will, checked by python", async () => {
  const { looksIncompressible } = await import(
    "../../lib/compress/_deflate_block.ts"
  );
  const mib = 1 << 20;
  const random = crypto.getRandomValues(new Uint8Array(65536));
  const noise = new Uint8Array(4 * mib).map((_, i) =>
    random[(i * 7919) % 65536]! ^ (i >> 16)
  );
  // Small counters: skewed bytes and no repeats that level 1 would find.
  const counters = new Uint8Array(
    new Uint32Array(mib / 4).map((_, i) => Math.imul(i, 2654435761) >>> 20)
      .buffer,
  );
  const text = new TextEncoder().encode(
    Array.from({ length: 20000 }, (_, i) => `record ${i} value=${i * 7};`)
      .join(""),
  ).subarray(0, mib);
  assert.equal(looksIncompressible(noise.subarray(0, mib)), true);
  assert.equal(looksIncompressible(counters), false, "skewed bytes shrink");
  assert.equal(looksIncompressible(text), false);
  assert.equal(looksIncompressible(new Uint8Array(mib)), false);
  // The whole stream: random input costs at most 0.1%, and reads back.
  await using dir = await tempDir();
  for (
    const [name, input] of [["noise", noise], ["counters", counters]] as const
  ) {
    const out = new Uint8Array(
      await new Response(
        parallelCompress(ReadableStream.from([input]), { jobs: 2 }),
      ).arrayBuffer(),
    );
    const path = `${dir.path}/${name}.gz`;
    await Deno.writeFile(path, out);
    await Deno.writeFile(`${dir.path}/${name}`, input);
    assert.equal(
      await pythonInflate(path, 31),
      await fileDigest(`${dir.path}/${name}`),
      name,
    );
    if (name === "noise") assert.ok(out.length <= input.length * 1.001);
    else assert.ok(out.length < input.length * 0.8, `${name}: ${out.length}`);
  }
});
