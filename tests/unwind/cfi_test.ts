/**
 * The call frame information reader against readelf's interpretation of
 * the same tables (`readelf -wF`), on libc and on programs gcc builds; and
 * mutated tables that must never hang or throw anything but a format error.
 */

import assert from "node:assert/strict";
import {
  ElfFormatError,
  EM_X86_64,
  findSection,
  readElf,
  readElfAt,
} from "../../lib/elf/mod.ts";
import {
  CallFrameInfo,
  type CfaRow,
  CfiFormatError,
  loadModuleFile,
  unwindThread,
} from "../../lib/unwind/mod.ts";
import {
  check,
  runTool,
  seededRandom,
  tempDir,
  TESTDATA,
} from "../_helpers.ts";

const X86_64_NAMES = [
  "rax",
  "rdx",
  "rcx",
  "rbx",
  "rsi",
  "rdi",
  "rbp",
  "rsp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "ra",
];

/** One row of `readelf -wF`: the location, the CFA, each column's rule. */
interface ReadelfRow {
  location: bigint;
  cfa: string;
  columns: Map<string, string>;
}

/** Parses `readelf -wF` (`--debug-dump=frames-interp`) of one section. */
async function readelfRows(
  path: string,
  section = ".eh_frame",
): Promise<ReadelfRow[]> {
  // readelf exits 1 on libc with nothing on stderr; its table is whole.
  const result = await runTool("readelf", ["-wF", path]);
  assert.ok(result.code <= 1 && result.stderr === "", result.stderr);
  const text = new TextDecoder().decode(result.stdout);
  const rows: ReadelfRow[] = [];
  let header: string[] | undefined;
  let inFde = false;
  let inSection = false;
  for (const line of text.split("\n")) {
    const contents = /^Contents of the (\S+) section/.exec(line);
    if (contents !== null) {
      inSection = contents[1] === section;
      header = undefined;
      continue;
    }
    if (!inSection) continue;
    if (/^[0-9a-f]{8}\s/.test(line)) {
      // An entry's first line: the rows that follow are an FDE's, or a CIE's.
      inFde = / FDE /.test(line);
      header = undefined;
      continue;
    }
    if (/^\s+LOC\s+CFA/.test(line)) {
      header = inFde ? line.trim().split(/\s+/) : undefined;
      continue;
    }
    if (header === undefined || !/^[0-9a-f]{16} /.test(line)) {
      if (line.trim() === "") header = undefined;
      continue;
    }
    // A register rule is two words, `r9 (r9)`: keep them together.
    const cells = line.trim().split(/\s+/).reduce<string[]>(
      (all, word) => {
        if (word.startsWith("(") && all.length > 0) {
          all[all.length - 1] += ` ${word}`;
        } else all.push(word);
        return all;
      },
      [],
    );
    const columns = new Map<string, string>();
    header.slice(2).forEach((name, i) => columns.set(name, cells[i + 2]!));
    rows.push({ location: BigInt(`0x${cells[0]}`), cfa: cells[1]!, columns });
  }
  return rows;
}

/** Our row in readelf's words: `rsp+8`, `exp`; `c-16`, `u`, `exp`, `r12`. */
function cfaText(row: CfaRow): string {
  if (row.cfa.kind === "expression") return "exp";
  return `${X86_64_NAMES[row.cfa.register]}+${row.cfa.offset}`;
}

function ruleText(row: CfaRow, name: string): string {
  const number = X86_64_NAMES.indexOf(name);
  const rule = row.registers.get(number);
  if (rule === undefined) return "u";
  switch (rule.kind) {
    case "offset":
      return `c${rule.offset >= 0n ? "+" : ""}${rule.offset}`;
    case "val_offset":
      return `v${rule.offset >= 0n ? "+" : ""}${rule.offset}`;
    case "expression":
      return "exp";
    case "val_expression":
      return "vexp";
    case "register":
      return `r${rule.register} (${X86_64_NAMES[rule.register]})`;
    case "undefined":
      return "u";
    case "same":
      return "s";
  }
}

async function compareWithReadelf(
  path: string,
  section = ".eh_frame",
): Promise<number> {
  using file = await Deno.open(path);
  const image = await loadModuleFile(file, { path, start: 0n });
  assert.ok(image.cfi, `${path}: ${image.error}`);
  const rows = await readelfRows(path, section);
  assert.ok(rows.length > 20, `${path}: readelf gave ${rows.length} rows`);
  let compared = 0;
  for (const expected of rows) {
    const row = image.cfi.row(expected.location);
    assert.ok(row, `${path}: no row at 0x${expected.location.toString(16)}`);
    assert.equal(
      cfaText(row),
      expected.cfa,
      `${path}: CFA at 0x${expected.location.toString(16)}`,
    );
    for (const [name, rule] of expected.columns) {
      // readelf prints "u" for a column the CIE's initial rules never named.
      assert.equal(
        ruleText(row, name),
        rule,
        `${path}: ${name} at 0x${expected.location.toString(16)}`,
      );
    }
    compared++;
  }
  return compared;
}

Deno.test("CallFrameInfo gives readelf's rows for every FDE of libc and of gcc programs", async () => {
  await using dir = await tempDir();
  const programs = ["/usr/lib/x86_64-linux-gnu/libc.so.6"];
  for (
    const [name, flags] of [
      ["o0", ["-O0"]],
      ["o2", ["-O2", "-fomit-frame-pointer"]],
      ["static", ["-O2", "-static"]],
    ] as const
  ) {
    const out = `${dir.path}/${name}`;
    await check("gcc", [
      "-g",
      ...flags,
      "-pthread",
      "-o",
      out,
      `${TESTDATA}/unwind/unwind.c`,
    ]);
    programs.push(out);
  }
  for (const path of programs) {
    const compared = await compareWithReadelf(path);
    assert.ok(compared > 20, `${path}: ${compared} rows`);
  }
});

Deno.test("CallFrameInfo reads .debug_frame (gcc without unwind tables) as readelf does", async () => {
  await using dir = await tempDir();
  const out = `${dir.path}/debug_frame`;
  await check("gcc", [
    "-g",
    "-O2",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-pthread",
    "-o",
    out,
    `${TESTDATA}/unwind/unwind.c`,
  ]);
  const compared = await compareWithReadelf(out, ".debug_frame");
  assert.ok(compared > 20, `${compared} rows`);
});

Deno.test("CallFrameInfo finds the same entry through .eh_frame_hdr and by scanning", async () => {
  const path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  using file = await Deno.open(path);
  const elf = await readElf(file);
  const section = async (name: string) => {
    const s = findSection(elf, name)!;
    return { bytes: await readElfAt(file, s.offset, s.size), address: s.addr };
  };
  const ehFrame = await section(".eh_frame");
  const options = { is64: true, littleEndian: true, where: path };
  const indexed = new CallFrameInfo({
    ehFrame,
    ehFrameHdr: await section(".eh_frame_hdr"),
  }, options);
  const scanned = new CallFrameInfo({ ehFrame }, options);
  const random = seededRandom(12);
  const text = findSection(elf, ".text")!;
  for (let i = 0; i < 2000; i++) {
    const pc = text.addr + BigInt(Math.floor(random() * text.size));
    assert.deepEqual(
      indexed.row(pc),
      scanned.row(pc),
      `at 0x${pc.toString(16)}`,
    );
  }
});

Deno.test("mutated .eh_frame and stacks never hang or throw out of the unwinder", async () => {
  const path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  using file = await Deno.open(path);
  const elf = await readElf(file);
  const eh = findSection(elf, ".eh_frame")!;
  const hdr = findSection(elf, ".eh_frame_hdr")!;
  const text = findSection(elf, ".text")!;
  const original = await readElfAt(file, eh.offset, eh.size);
  const header = await readElfAt(file, hdr.offset, hdr.size);
  const random = seededRandom(7);
  const started = performance.now();
  let formatErrors = 0;
  let rows = 0;
  for (let round = 0; round < 3000; round++) {
    const bytes = original.slice();
    // A few bytes changed, sometimes a length field, sometimes a run.
    const count = 1 + Math.floor(random() * 8);
    for (let i = 0; i < count; i++) {
      const at = Math.floor(random() * bytes.length);
      bytes[at] = random() < 0.3 ? 0xff : Math.floor(random() * 256);
    }
    const cfi = new CallFrameInfo(
      round % 2 === 0 ? { ehFrame: { bytes, address: eh.addr } } : {
        ehFrame: { bytes, address: eh.addr },
        ehFrameHdr: { bytes: header, address: hdr.addr },
      },
      { is64: true, littleEndian: true, where: "mutated" },
    );
    const pc = text.addr + BigInt(Math.floor(random() * text.size));
    try {
      if (cfi.row(pc) !== undefined) rows++;
    } catch (error) {
      if (
        !(error instanceof CfiFormatError || error instanceof ElfFormatError)
      ) {
        throw error;
      }
      formatErrors++;
    }
    // The same table under a walk over a random stack: never a throw.
    const stack = new Uint8Array(512);
    for (let i = 0; i < stack.length; i++) {
      stack[i] = Math.floor(random() * 256);
    }
    const view = new DataView(stack.buffer);
    const result = await unwindThread({
      pc,
      sp: 0x7000n,
      values: new Map([[6, 0x7000n + BigInt(8 * Math.floor(random() * 64))]]),
    }, {
      machine: EM_X86_64,
      littleEndian: true,
      read: (address, size) => {
        const at = Number(address - 0x7000n);
        if (address < 0x7000n || at + size > stack.length) return undefined;
        return size === 8
          ? view.getBigUint64(at, true)
          : BigInt(view.getUint32(at, true));
      },
      module: () =>
        Promise.resolve({ path: "mutated", start: 0n, bias: 0n, cfi }),
      isCode: (address) =>
        address >= text.addr && address < text.addr + BigInt(text.size),
    }, { maxFrames: 64 });
    assert.ok(result.frames.length >= 1 && result.frames.length <= 64);
  }
  const elapsed = performance.now() - started;
  assert.ok(formatErrors > 100, `${formatErrors} format errors in 3000 rounds`);
  assert.ok(rows > 100, `${rows} rows found`);
  // 3000 tables and walks: well within a second each, nothing hangs.
  assert.ok(elapsed < 60_000, `${elapsed} ms`);
});

Deno.test("a CFA that does not advance, an expression that loops and a deep state stack end the walk with a reason", async () => {
  // CIE: "zR", code align 1, data align -8, RA column 16, pcrel|sdata4;
  // initial CFA rsp+0 (does not advance), RA at CFA-8.
  const cie = [
    0x14,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0x7a,
    0x52,
    0,
    1,
    0x78,
    0x10,
    1,
    0x1b,
    0x0c,
    7,
    0,
    0x90,
    1,
    0,
    0,
  ];
  const fde = (instructions: number[]) => {
    const body = [0x1c, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, ...instructions];
    while ((body.length + 4) % 4 !== 0) body.push(0);
    return [body.length, 0, 0, 0, ...body];
  };
  const table = (instructions: number[]) => {
    const bytes = new Uint8Array([...cie, ...fde(instructions), 0, 0, 0, 0]);
    new DataView(bytes.buffer).setInt32(32, 0x1000 - 32, true);
    return new CallFrameInfo({ ehFrame: { bytes, address: 0n } }, {
      is64: true,
      littleEndian: true,
      where: "test",
    });
  };
  const memory = new Map([[0x8000n - 8n, 0x1010n]]);
  const walk = (cfi: CallFrameInfo) =>
    unwindThread({ pc: 0x1010n, sp: 0x8000n, values: new Map() }, {
      machine: EM_X86_64,
      littleEndian: true,
      read: (address) => memory.get(address),
      module: () => Promise.resolve({ path: "test", start: 0n, bias: 0n, cfi }),
      isCode: () => false,
    });
  // CFA = rsp + 0 and the return address is the PC itself: no progress.
  const stuck = await walk(table([]));
  assert.equal(stuck.frames.length, 1);
  assert.match(stuck.error!, /no progress|went down/);
  // DW_CFA_def_cfa_expression: DW_OP_skip -3 (itself): a loop.
  const loop = await walk(table([0x0f, 3, 0x2f, 0xfd, 0xff]));
  assert.match(loop.error!, /expected at most 1000 operations/);
  // 65 nested DW_CFA_remember_state.
  const deep = await walk(table(new Array(65).fill(0x0a)));
  assert.match(deep.error!, /at most 64 nested DW_CFA_remember_state/);
  // An expression that pushes 65 values.
  const tall = await walk(table([0x0f, 65, ...new Array(65).fill(0x30)]));
  assert.match(tall.error!, /at most 64 values on the stack/);
  // An FDE whose length runs past the section.
  const long = table([]);
  const bytes = new Uint8Array([...cie, 0xf0, 0xff, 0xff, 0x7f, 0x1c, 0, 0, 0]);
  const huge = new CallFrameInfo({ ehFrame: { bytes, address: 0n } }, {
    is64: true,
    littleEndian: true,
    where: "test",
  });
  assert.throws(() => huge.row(0x1000n), /past the section's end/);
  assert.ok(long.row(0x1000n));
});

Deno.test("loadModuleFile() reads no section past the trace's budget, and says so", async () => {
  const path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  using file = await Deno.open(path);
  const budget = { bytes: 4096 };
  const image = await loadModuleFile(file, { path, start: 0n, budget });
  assert.equal(image.cfi, undefined);
  assert.match(
    image.error!,
    /\.eh_frame has \d+ bytes, more than the 4096 left of the trace's budget/,
  );
  assert.ok(budget.bytes >= 0 && budget.bytes <= 4096);
  using again = await Deno.open(path);
  const whole = await loadModuleFile(again, { path, start: 0n });
  assert.ok(whole.cfi !== undefined && whole.symbols !== undefined);
});

Deno.test("a module without section headers is unwound from PT_GNU_EH_FRAME, as readelf reads the original", async () => {
  await using dir = await tempDir();
  const original = `${dir.path}/full`;
  await check("gcc", [
    "-O2",
    "-o",
    original,
    `${TESTDATA}/unwind/unwind.c`,
    "-pthread",
  ]);
  // What sstrip does: no section header table (e_shoff, e_shnum and
  // e_shstrndx zeroed); the segments are untouched.
  const bytes = await Deno.readFile(original);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0x28, 0n, true);
  view.setUint16(0x3c, 0, true);
  view.setUint16(0x3e, 0, true);
  const headerless = `${dir.path}/headerless`;
  await Deno.writeFile(headerless, bytes);
  const sections = await runTool("readelf", ["-S", headerless]);
  assert.match(
    new TextDecoder().decode(sections.stdout),
    /There are no sections/,
  );
  using file = await Deno.open(headerless);
  const image = await loadModuleFile(file, { path: headerless, start: 0n });
  const cfi = image.cfi;
  assert.ok(cfi, image.error);
  const rows = await readelfRows(original);
  assert.ok(rows.length > 10);
  for (const expected of rows) {
    const row: CfaRow = cfi.row(expected.location)!;
    assert.equal(
      cfaText(row),
      expected.cfa,
      `at 0x${expected.location.toString(16)}`,
    );
  }
});

Deno.test("ArmExidx reads every .ARM.exidx entry of an armhf program as readelf -u does", async () => {
  await using dir = await tempDir();
  const program = `${dir.path}/arm`;
  await check("arm-linux-gnueabihf-gcc", [
    "-g",
    "-O2",
    "-static",
    "-pthread",
    "-o",
    program,
    `${TESTDATA}/unwind/unwind.c`,
  ]);
  using file = await Deno.open(program);
  const image = await loadModuleFile(file, { path: program, start: 0n });
  const exidx = image.exidx!;
  assert.ok(exidx, image.error);
  // readelf -u: an entry's address line, then `[cantunwind]` or the
  // opcode lines (their leading 0x.. bytes), compact or generic.
  const text = await check("readelf", ["-u", program]);
  const entries = text.split("\n\n").flatMap((block) => {
    const head = /^(0x[0-9a-f]+) <[^>]*>: (.*)$/m.exec(block);
    if (head === null) return [];
    const opcodes = [...block.matchAll(/^ {2}((?:0x[0-9a-f]{2} ?)+)/gm)]
      .flatMap((m) => m[1]!.trim().split(/\s+/).map((b) => parseInt(b, 16)));
    return [{
      address: BigInt(head[1]!),
      cantunwind: head[2]!.includes("[cantunwind]"),
      generic: block.includes("Personality routine"),
      opcodes,
    }];
  });
  assert.ok(entries.length > 100, `${entries.length} entries`);
  assert.ok(entries.some((e) => e.cantunwind));
  assert.ok(entries.some((e) => e.generic));
  for (const entry of entries) {
    const found = exidx.find(entry.address);
    const where = `at 0x${entry.address.toString(16)}`;
    if (entry.cantunwind) {
      assert.deepEqual(found, { kind: "cantunwind" }, where);
      continue;
    }
    assert.equal(found?.kind, "opcodes", where);
    const ours = [...(found as { opcodes: Uint8Array }).opcodes];
    // readelf stops at the first `finish` of the padding; we keep them.
    assert.deepEqual(ours.slice(0, entry.opcodes.length), entry.opcodes, where);
    assert.ok(ours.slice(entry.opcodes.length).every((b) => b === 0xb0), where);
  }
});
