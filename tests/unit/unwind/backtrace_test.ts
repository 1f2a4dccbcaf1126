/**
 * A core of an architecture the unwinder does not walk (RISC-V here, built
 * byte by byte as the kernel lays one out) gets its PC as frame 0 and says
 * why there is no more, never an error.
 */

import assert from "node:assert/strict";
import {
  CoreInspectorStream,
  EM_RISCV,
  ET_CORE,
  NT_PRSTATUS,
  PT_NOTE,
} from "../../../lib/elf/mod.ts";
import { backtraceCore } from "../../../lib/unwind/mod.ts";

Deno.test("backtraceCore() of a RISC-V core: frame 0 from its PC, 'unsupported architecture'", async () => {
  // ELF header, one PT_NOTE, one NT_PRSTATUS (elf_prstatus of riscv64:
  // 112 bytes, 32 registers pc, x1..x31, pr_fpvalid).
  const desc = new Uint8Array(112 + 32 * 8 + 8);
  const d = new DataView(desc.buffer);
  d.setUint16(12, 11, true); // pr_cursig: SIGSEGV
  d.setUint32(32, 4321, true); // pr_pid
  d.setBigUint64(112, 0x10a4cn, true); // pc
  d.setBigUint64(112 + 2 * 8, 0x3fffff00n, true); // sp
  const note = new Uint8Array(12 + 8 + desc.length);
  const n = new DataView(note.buffer);
  n.setUint32(0, 5, true);
  n.setUint32(4, desc.length, true);
  n.setUint32(8, NT_PRSTATUS, true);
  note.set(new TextEncoder().encode("CORE"), 12);
  note.set(desc, 20);
  const core = new Uint8Array(64 + 56 + note.length);
  const v = new DataView(core.buffer);
  core.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, ET_CORE, true);
  v.setUint16(18, EM_RISCV, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint32(64, PT_NOTE, true);
  v.setBigUint64(64 + 8, 120n, true); // p_offset
  v.setBigUint64(64 + 32, BigInt(note.length), true); // p_filesz
  core.set(note, 120);
  const inspector = new CoreInspectorStream();
  inspector.inspect(core);
  const trace = await backtraceCore(inspector.report);
  assert.equal(trace.error, "unsupported architecture");
  assert.equal(trace.threads.length, 1);
  assert.equal(trace.threads[0]!.tid, 4321);
  assert.deepEqual(trace.threads[0]!.frames.map((f) => [f.pc, f.trust]), [
    [0x10a4cn, "context"],
  ]);
});
