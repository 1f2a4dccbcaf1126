import assert from "node:assert/strict";
import { mainCommand, runTool, tempDir } from "./_helpers.ts";

const GIB = 1 << 30;

/** Runs main.ts, sampling its peak RSS (VmHWM) until it exits. */
async function runMeasured(
  args: string[],
): Promise<{ code: number; stderr: string; peakKib: number }> {
  const [deno, ...rest] = mainCommand();
  const child = new Deno.Command(deno!, {
    args: [...rest, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let peakKib = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const match = /VmHWM:\s+(\d+) kB/.exec(status);
        if (match) peakKib = Math.max(peakKib, Number(match[1]));
      } catch {
        // The process has exited.
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  const output = await child.output();
  running = false;
  await sampler;
  return {
    code: output.code,
    stderr: new TextDecoder().decode(output.stderr),
    peakKib,
  };
}

Deno.test("cli: a 2 GiB sparse file round-trips in flat memory, checked by gzip", async () => {
  await using dir = await tempDir();
  const big = `${dir.path}/big`;
  // Data at the start, the middle and the end; holes between.
  {
    using file = await Deno.open(big, { write: true, createNew: true });
    const block = new Uint8Array(1 << 20);
    for (const at of [0, GIB, 2 * GIB - block.length]) {
      for (let i = 0; i < block.length; i++) {
        block[i] = (i * 31 + at / 4096) & 0xff;
      }
      await file.seek(at, Deno.SeekMode.Start);
      await file.write(block);
    }
  }
  assert.equal((await Deno.stat(big)).size, 2 * GIB);

  const compressed = await runMeasured(["-c", "-f", big, "-o", `${big}.gz`]);
  assert.equal(compressed.code, 0, compressed.stderr);
  // Deno itself takes about 60 MiB; 2 GiB passing through must not show.
  assert.ok(
    compressed.peakKib > 0 && compressed.peakKib < 300 * 1024,
    `peak RSS ${compressed.peakKib} KiB`,
  );

  const byGzip = await runTool("sh", [
    "-c",
    `gzip -dc '${big}.gz' | cmp - '${big}'`,
  ]);
  assert.equal(byGzip.code, 0, byGzip.stderr);

  const restored = await runMeasured([
    "-d",
    "-f",
    `${big}.gz`,
    "-o",
    `${big}.out`,
  ]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.ok(
    restored.peakKib > 0 && restored.peakKib < 300 * 1024,
    `peak RSS ${restored.peakKib} KiB`,
  );
  const same = await runTool("cmp", [big, `${big}.out`]);
  assert.equal(same.code, 0, new TextDecoder().decode(same.stdout));
});
