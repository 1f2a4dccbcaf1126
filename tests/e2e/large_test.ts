import assert from "node:assert/strict";
import { measure } from "../../scripts/measure.ts";
import { mainCommand, runTool, tempDir } from "../_helpers.ts";

const GIB = 1 << 30;

/** Runs main.ts as the binary runs, measuring its peak RSS. */
async function runMeasured(args: string[]) {
  return await measure([...mainCommand(), ...args]);
}

/** A sparse file with data blocks at the start, at every 256 MiB, and at the end. */
async function sparseFile(path: string, size: number): Promise<void> {
  using file = await Deno.open(path, { write: true, createNew: true });
  const block = new Uint8Array(1 << 20);
  for (let at = 0; at < size; at += 256 << 20) {
    for (let i = 0; i < block.length; i++) {
      block[i] = (i * 31 + at / 4096) & 0xff;
    }
    await file.seek(at, Deno.SeekMode.Start);
    await file.write(block);
  }
  await file.truncate(size);
  await file.seek(size - block.length, Deno.SeekMode.Start);
  await file.write(block);
}

Deno.test("cli: a 2 GiB sparse file round-trips in flat memory, checked by gzip, and comes back sparse", async () => {
  await using dir = await tempDir();
  const big = `${dir.path}/big`;
  const small = `${dir.path}/small`;
  await sparseFile(big, 2 * GIB);
  await sparseFile(small, GIB / 4);
  assert.equal((await Deno.stat(big)).size, 2 * GIB);

  const peaks: Record<string, number> = {};
  for (const [name, path] of [["256 MiB", small], ["2 GiB", big]] as const) {
    for (const jobs of ["1", "2"]) {
      const compressed = await runMeasured([
        "-c",
        "-j",
        jobs,
        "-f",
        path,
        "-o",
        `${path}.${jobs}.gz`,
      ]);
      assert.equal(compressed.code, 0, compressed.stderr);
      peaks[`${name} -j ${jobs}`] = compressed.peakKib;
      // Deno itself and its workers take about 60 MiB; the data must not show.
      assert.ok(
        compressed.peakKib > 0 && compressed.peakKib < 200 * 1024,
        `${name} -j ${jobs}: peak RSS ${compressed.peakKib} KiB`,
      );
    }
  }
  // Memory does not grow with the input: eight times the data, about the same peak.
  for (const jobs of ["1", "2"]) {
    const ratio = peaks[`2 GiB -j ${jobs}`]! / peaks[`256 MiB -j ${jobs}`]!;
    assert.ok(ratio < 1.25, `-j ${jobs}: ${JSON.stringify(peaks)}`);
  }

  for (const jobs of ["1", "2"]) {
    const byGzip = await runTool("sh", [
      "-c",
      `gzip -dc '${big}.${jobs}.gz' | cmp - '${big}'`,
    ]);
    assert.equal(byGzip.code, 0, byGzip.stderr);
  }

  // Decompression, in parallel (the files carry their index): flat too.
  const restoredPeaks: number[] = [];
  for (const path of [small, big]) {
    const restored = await runMeasured([
      "-d",
      "-f",
      `${path}.2.gz`,
      "-o",
      `${path}.out`,
    ]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.ok(
      restored.peakKib > 0 && restored.peakKib < 200 * 1024,
      `peak RSS ${restored.peakKib} KiB`,
    );
    restoredPeaks.push(restored.peakKib);
  }
  assert.ok(
    restoredPeaks[1]! / restoredPeaks[0]! < 1.25,
    `decompression peaks ${restoredPeaks}`,
  );
  const same = await runTool("cmp", [big, `${big}.out`]);
  assert.equal(same.code, 0, new TextDecoder().decode(same.stdout));
  // Zero pages come back as holes: 10 MiB of data, 2 GiB of file.
  const allocated = (await Deno.stat(`${big}.out`)).blocks! * 512;
  assert.ok(allocated < 64 << 20, `the output allocates ${allocated} bytes`);
});
