import assert from "node:assert/strict";
import { trimHeap } from "../../../lib/util/mod.ts";

/** This process's resident set, from the kernel. */
function residentBytes(): number {
  const pages = Number(Deno.readTextFileSync("/proc/self/statm").split(" ")[1]);
  return pages * 4096;
}

Deno.test("trimHeap() gives the C heap's free pages back to the kernel", () => {
  const libc = Deno.dlopen(
    "libc.so.6",
    {
      malloc: { parameters: ["usize"], result: "pointer" },
      free: { parameters: ["pointer"], result: "void" },
      memset: { parameters: ["pointer", "i32", "usize"], result: "pointer" },
    } as const,
  );
  try {
    // 48 blocks of 96 KiB (below glibc's mmap threshold: they come from
    // the heap), all touched; freed but the last, which keeps the free
    // space from being the top of the heap that free() trims by itself.
    const size = 96 << 10;
    const blocks = Array.from({ length: 48 }, () => {
      const block = libc.symbols.malloc(BigInt(size));
      assert.ok(block !== null, "malloc");
      libc.symbols.memset(block, 1, BigInt(size));
      return block;
    });
    for (const block of blocks.slice(0, -1)) libc.symbols.free(block);
    const before = residentBytes();
    assert.equal(trimHeap(), true, "glibc released pages");
    const after = residentBytes();
    // 47 blocks are 4.4 MiB: most of it comes back.
    assert.ok(
      before - after >= 3 << 20,
      `resident ${before} bytes before the trim, ${after} after`,
    );
    libc.symbols.free(blocks.at(-1)!);
  } finally {
    libc.close();
  }
});
