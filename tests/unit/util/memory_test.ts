import assert from "node:assert/strict";

Deno.test("keepFreedMemory() makes glibc's malloc take block-sized buffers from its heap", async () => {
  // In a process of its own: the settings are for the whole process.
  const script = `
    import { keepFreedMemory } from ${
    JSON.stringify(new URL("../../../lib/util/mod.ts", import.meta.url).href)
  };
    const libc = Deno.dlopen("libc.so.6", {
      malloc: { parameters: ["usize"], result: "pointer" },
      free: { parameters: ["pointer"], result: "void" },
    });
    // glibc's chunk header, the size word before the pointer: bit 1 is
    // set when the chunk has pages of its own (mmap).
    const maps = (bytes) => {
      const p = libc.symbols.malloc(BigInt(bytes));
      const mapped = (new Deno.UnsafePointerView(p).getBigUint64(-8) & 2n) !== 0n;
      libc.symbols.free(p);
      return mapped;
    };
    const before = maps(2 << 20);
    const kept = keepFreedMemory();
    console.log(JSON.stringify({ before, kept, after: maps(2 << 20), large: maps(8 << 20) }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--ext=js", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { code, stdout, stderr } = await out.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const result = JSON.parse(new TextDecoder().decode(stdout));
  // 2 MiB is over glibc's default threshold (128 KiB, raised as buffers
  // are freed, but not this far this early), under ours (4 MiB).
  assert.deepEqual(result, {
    before: true,
    kept: true,
    after: false,
    large: true,
  });
});
