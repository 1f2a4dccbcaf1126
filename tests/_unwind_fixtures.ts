/**
 * The stack unwinder's test oracle (issue #12): real programs that really
 * crash (`tests/testdata/unwind/unwind.c`, `throw.cc`), built at test time
 * for x86_64 and aarch64 in several ways, their cores, and gdb's stack trace
 * of every thread of each core (`tests/testdata/gdb_frames.py`). Built once
 * per test process, removed when it exits.
 *
 * x86_64 cores come from {@linkcode kernelCore}: the kernel's when
 * core_pattern writes plain files, otherwise gdb's at the same crash in the
 * kernel's layout (nothing crashes for real then). aarch64 cores are
 * qemu-user's (7.2: NT_PRSTATUS, NT_PRPSINFO and NT_AUXV only; no NT_FILE,
 * NT_SIGINFO, NT_FPREGSET or NT_ARM_PAC_MASK; code pages not dumped; no
 * vDSO, the signal trampoline is a page of qemu's own), through
 * {@linkcode quietQemu}.
 *
 * @module
 */

import { forgetHostCore, quietQemu } from "./_fixtures.ts";
import {
  check,
  kernelCore,
  listDir,
  liveCore,
  runTool,
  TESTDATA,
} from "./_helpers.ts";

/** One crashed (or, for `wait`, live) program and its core. */
export interface UnwindFixture {
  /** Unique, e.g. `x86_64-O2-static-handler`: variant, then mode. */
  name: string;
  /** The architecture the program was built for. */
  arch: "x86_64" | "i386" | "aarch64" | "armhf" | "mips" | "powerpc";
  /** The program with its symbols and debug info: give this one to gdb. */
  program: string;
  /** A `strip -o` copy of `program`, which is what ran, where there is one. */
  stripped?: string;
  /** The core of the crash (of `stripped` where there is one). */
  core: string;
  /**
   * Who wrote the core: the host kernel, gdb (kernelCore's fallback,
   * rewritten into the kernel's layout, or gcore of a live process in
   * `wait` mode, as gdb writes it) or qemu-user.
   */
  coreBy: "kernel" | "gdb" | "qemu";
  /** segv, abort, handler, threads or wait (unwind.c), or throw (throw.cc). */
  mode: string;
  /** The compiler's flags. */
  flags: string[];
  /** Where the program's shared libraries are, when not the host's `/`. */
  sysroot?: string;
  /**
   * The core gdb reads instead of `core`, where gdb cannot unwind `core`
   * itself: with `-mbranch-protection=standard`, qemu signs the return
   * addresses (pointer authentication), and gdb needs the core's
   * NT_ARM_PAC_MASK to strip them, which qemu does not write. This is the
   * same program run the same way with pointer authentication off: the
   * same registers and stack addresses, the return addresses unsigned, so
   * gdb's frames are what the unwinder must find in `core`.
   */
  oracleCore?: string;
}

/** One frame of gdb's stack trace, newest first. */
export interface GdbFrame {
  /** gdb's `frame.pc()`: for a caller's frame, the return address. */
  pc: bigint;
  /** gdb's name for it, `null` where gdb has none. */
  function: string | null;
  /** An inlined function's frame (gdb's `INLINE_FRAME`). */
  inline: boolean;
  /** normal, inline, sigtramp, tailcall, dummy, arch or sentinel. */
  type: string;
}

/** One thread of a core as gdb sees it. */
export interface GdbThread {
  /** gdb's thread number: 1 is the core's first NT_PRSTATUS. */
  num: number;
  /** The thread's LWP, its NT_PRSTATUS `pr_pid`. */
  tid: number;
  /** At most 64, ending where gdb's unwinding ends. */
  frames: GdbFrame[];
}

/** Options for {@linkcode gdbFrames}. */
export interface GdbFramesOptions {
  /**
   * Let gdb read separate debug files (`/usr/lib/debug`, e.g. Debian's
   * libc6-dbg where installed). Off, gdb knows only what the program and
   * the libraries themselves hold (CFI, `.symtab`/`.dynsym`), as the
   * unwinder does, and gives the same answer on every machine: with
   * libc6-dbg it names libc's frames by their internal names
   * (`__GI_raise`) and adds `tailcall` frames that are not on the stack.
   *
   * @default {false}
   */
  separateDebug?: boolean;
}

const UNWIND = `${TESTDATA}/unwind`;
const GDB_FRAMES = `${TESTDATA}/gdb_frames.py`;
const AARCH64_SYSROOT = "/usr/aarch64-linux-gnu";
const CRASH_MODES = ["segv", "abort", "handler", "threads"];
/**
 * qemu's `max` CPU without SVE and SME: qemu's cores carry no NT_ARM_SVE,
 * and gdb 13, whose target then has no SVE, loops forever on the SVE record
 * of a signal frame. Pointer authentication and BTI stay on.
 */
const QEMU_CPU = "max,sve=off,sme=off";
/** A gdb that runs longer than this is stuck (see {@linkcode QEMU_CPU}). */
const GDB_TIMEOUT_MS = 60_000;

/** How one program is built, and which of its modes crash. */
interface Variant {
  name: string;
  arch: "x86_64" | "i386" | "aarch64" | "armhf" | "mips" | "powerpc";
  cc: string;
  flags: string[];
  modes: string[];
  sysroot?: string;
  /** The qemu-user that runs it, for a program of another architecture. */
  qemu?: string;
}

const X86_64_O2 = ["-g", "-O2", "-fomit-frame-pointer", "-pthread"];
const AARCH64_O2 = ["-g", "-O2", "-pthread"];

const VARIANTS: Variant[] = [
  {
    name: "x86_64-O0",
    arch: "x86_64",
    cc: "gcc",
    flags: ["-g", "-O0", "-pthread"],
    modes: CRASH_MODES,
  },
  {
    name: "x86_64-O2",
    arch: "x86_64",
    cc: "gcc",
    flags: X86_64_O2,
    modes: [...CRASH_MODES, "wait"],
  },
  {
    name: "x86_64-O2-static",
    arch: "x86_64",
    cc: "gcc",
    flags: [...X86_64_O2, "-static"],
    modes: CRASH_MODES,
  },
  {
    name: "i386-O2",
    arch: "i386",
    cc: "gcc",
    flags: ["-m32", ...X86_64_O2],
    modes: CRASH_MODES,
  },
  // CFI from .eh_frame (mips, powerpc) or, for armhf (whose gcc writes
  // .ARM.exidx), from the .debug_frame that -g adds.
  {
    name: "armhf-O2-static",
    arch: "armhf",
    qemu: "qemu-arm",
    cc: "arm-linux-gnueabihf-gcc",
    flags: ["-g", "-O2", "-pthread", "-static"],
    // libc's frames come from .ARM.exidx: it has no .debug_frame.
    modes: ["segv", "abort"],
  },
  {
    name: "mips-O2-static",
    arch: "mips",
    qemu: "qemu-mips",
    cc: "mips-linux-gnu-gcc",
    flags: ["-g", "-O2", "-pthread", "-static"],
    modes: ["segv", "abort"],
  },
  {
    name: "powerpc-O2-static",
    arch: "powerpc",
    qemu: "qemu-ppc",
    cc: "powerpc-linux-gnu-gcc",
    flags: ["-g", "-O2", "-pthread", "-static"],
    modes: ["segv", "abort"],
  },
  {
    name: "aarch64-O2-static",
    arch: "aarch64",
    qemu: "qemu-aarch64",
    cc: "aarch64-linux-gnu-gcc",
    flags: [...AARCH64_O2, "-static"],
    modes: CRASH_MODES,
  },
  {
    name: "aarch64-O2-static-pac",
    arch: "aarch64",
    qemu: "qemu-aarch64",
    cc: "aarch64-linux-gnu-gcc",
    flags: [...AARCH64_O2, "-static", "-mbranch-protection=standard"],
    modes: ["segv", "handler"],
  },
  {
    // Not PIE: qemu writes neither NT_FILE nor the program's headers, so
    // gdb finds no load address for a PIE, nor its shared libraries.
    name: "aarch64-O2-dynamic",
    arch: "aarch64",
    qemu: "qemu-aarch64",
    cc: "aarch64-linux-gnu-gcc",
    flags: [...AARCH64_O2, "-no-pie"],
    modes: CRASH_MODES,
    sysroot: AARCH64_SYSROOT,
  },
];

let built: Promise<UnwindFixture[]> | undefined;

/**
 * Builds (once per process) and returns every fixture: x86_64 `-O0`, `-O2
 * -fomit-frame-pointer` and the same `-static`, each in the modes segv,
 * abort, handler and threads; a stripped `-O2` segv; the uncaught C++
 * exception (`g++ -O2`); gcore of a live `-O2` program in `wait` mode; and
 * aarch64 `-O2 -static` in every crashing mode, with
 * `-mbranch-protection=standard` (segv, handler: return addresses really
 * signed, gdb reads {@linkcode UnwindFixture.oracleCore}), and dynamic
 * (`-no-pie`) under qemu `-L /usr/aarch64-linux-gnu` in every crashing mode
 * (left out where that does not run).
 */
export function unwindFixtures(): Promise<UnwindFixture[]> {
  built ??= build();
  return built;
}

async function build(): Promise<UnwindFixture[]> {
  const dir = await Deno.makeTempDir({ prefix: "gzcoredump_unwind_" });
  globalThis.addEventListener(
    "unload",
    () => Deno.removeSync(dir, { recursive: true }),
  );
  const jobs: (() => Promise<UnwindFixture[]>)[] = [];
  for (const variant of VARIANTS) {
    jobs.push(() => buildVariant(variant, dir));
  }
  jobs.push(() => buildStripped(dir));
  jobs.push(() => buildThrow(dir));
  // Two at a time: the tests run on two cores.
  const results = await pool(jobs, 2);
  return results.flat();
}

/** Runs `jobs`, at most `width` at a time; results in the jobs' order. */
async function pool<T>(
  jobs: (() => Promise<T>)[],
  width: number,
): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]!();
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

async function buildVariant(
  variant: Variant,
  dir: string,
): Promise<UnwindFixture[]> {
  const work = `${dir}/${variant.name}`;
  await Deno.mkdir(work);
  const program = `${work}/unwind`;
  await check(variant.cc, [
    ...variant.flags,
    "-o",
    program,
    `${UNWIND}/unwind.c`,
  ]);
  const fixtures: UnwindFixture[] = [];
  for (const mode of variant.modes) {
    const modeDir = `${work}/${mode}`;
    await Deno.mkdir(modeDir);
    const fixture: UnwindFixture = {
      name: `${variant.name}-${mode}`,
      arch: variant.arch,
      program,
      core: "",
      coreBy: "qemu",
      mode,
      flags: variant.flags,
      ...(variant.sysroot === undefined ? {} : { sysroot: variant.sysroot }),
    };
    if (variant.qemu !== undefined) {
      const signed = variant.flags.includes("-mbranch-protection=standard");
      const cpu = variant.arch === "aarch64" ? QEMU_CPU : undefined;
      if (signed) {
        const oracle = await qemuCore(variant.qemu, program, mode, modeDir, {
          cpu: `${QEMU_CPU},pauth=off`,
        });
        if (oracle === undefined) throw new Error(`${fixture.name}: no core`);
        fixture.oracleCore = `${modeDir}/pauth_off.core`;
        await Deno.rename(oracle, fixture.oracleCore);
      }
      const core = await qemuCore(variant.qemu, program, mode, modeDir, {
        ...(cpu === undefined ? {} : { cpu }),
        ...(variant.sysroot === undefined ? {} : { sysroot: variant.sysroot }),
      });
      // A dynamic program that qemu cannot run here: quietly no fixture.
      if (core === undefined) return fixtures;
      fixture.core = core;
    } else {
      fixture.core = mode === "wait"
        ? await liveCore(modeDir, program)
        : await kernelCore(program, [mode], modeDir);
      fixture.coreBy = await coreWriter(fixture.core);
    }
    fixtures.push(fixture);
  }
  return fixtures;
}

/** The `-O2` segv program stripped: the stripped copy crashes. */
async function buildStripped(dir: string): Promise<UnwindFixture[]> {
  const work = `${dir}/x86_64-O2-stripped`;
  await Deno.mkdir(work);
  const program = `${work}/unwind`;
  const stripped = `${work}/unwind_stripped`;
  await check("gcc", [...X86_64_O2, "-o", program, `${UNWIND}/unwind.c`]);
  await check("strip", ["-o", stripped, program]);
  const modeDir = `${work}/segv`;
  await Deno.mkdir(modeDir);
  const core = await kernelCore(stripped, ["segv"], modeDir);
  return [{
    name: "x86_64-O2-stripped-segv",
    arch: "x86_64",
    program,
    stripped,
    core,
    coreBy: await coreWriter(core),
    mode: "segv",
    flags: X86_64_O2,
  }];
}

/** The uncaught C++ exception: std::terminate, then abort(). */
async function buildThrow(dir: string): Promise<UnwindFixture[]> {
  const work = `${dir}/x86_64-throw`;
  await Deno.mkdir(work);
  const program = `${work}/throw`;
  const flags = ["-g", "-O2"];
  await check("g++", [...flags, "-o", program, `${UNWIND}/throw.cc`]);
  const core = await kernelCore(program, [], work);
  return [{
    name: "x86_64-O2-throw",
    arch: "x86_64",
    program,
    core,
    coreBy: await coreWriter(core),
    mode: "throw",
    flags,
  }];
}

/**
 * Crashes a program of another architecture under qemu-user (`name`) in
 * `dir` and returns qemu's core of it; `undefined` when a dynamic program
 * (with `sysroot`) does not run at all.
 */
async function qemuCore(
  name: string,
  program: string,
  mode: string,
  dir: string,
  options: { cpu?: string; sysroot?: string },
): Promise<string | undefined> {
  const qemu = await quietQemu(name);
  const prefix = options.sysroot === undefined ? "" : `-L ${options.sysroot} `;
  const cpu = options.cpu === undefined ? "" : `-cpu ${options.cpu} `;
  const result = await runTool("sh", [
    "-c",
    `ulimit -c unlimited; exec ${qemu} ${cpu}${prefix}${program} ${mode}`,
  ], { cwd: dir });
  const core = (await listDir(dir)).find((n) =>
    n.startsWith("qemu_") && n.endsWith(".core")
  );
  if (core === undefined) {
    if (options.sysroot !== undefined) return undefined;
    throw new Error(
      `${name} ${mode}: qemu wrote no core in ${dir} (exit ${result.code}): ${result.stderr}`,
    );
  }
  // qemu names the guest's core after its own pid.
  await forgetHostCore(Number(/_(\d+)\.core$/.exec(core)?.[1]));
  return `${dir}/${core}`;
}

/**
 * Who wrote an x86_64 core: gdb leaves its target description (a note of
 * owner "GDB"), the kernel does not. kernelCore decides by core_pattern at
 * the moment it runs, which other tests may change meanwhile.
 */
async function coreWriter(core: string): Promise<"kernel" | "gdb"> {
  const bytes = await Deno.readFile(core);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (view.getUint32(at, true) !== 4) continue; // PT_NOTE
    const start = Number(view.getBigUint64(at + 8, true));
    const end = start + Number(view.getBigUint64(at + 32, true));
    for (let note = start; note + 12 <= end;) {
      const nameSize = view.getUint32(note, true);
      const descSize = view.getUint32(note + 4, true);
      const name = new TextDecoder().decode(
        bytes.subarray(note + 12, note + 12 + nameSize),
      );
      if (name === "GDB\0") return "gdb";
      note += 12 + align4(nameSize) + align4(descSize);
    }
  }
  return "kernel";
}

function align4(size: number): number {
  return (size + 3) & ~3;
}

/**
 * gdb's stack trace of every thread of a fixture's core, sorted by thread
 * number (`tests/testdata/gdb_frames.py`): `gdb` for x86_64, with the
 * host's libraries, `gdb-multiarch` for aarch64, with `set sysroot` where
 * the fixture has one.
 */
export async function gdbFrames(
  fixture: UnwindFixture,
  options: GdbFramesOptions = {},
): Promise<GdbThread[]> {
  const gdb = fixture.arch === "x86_64" || fixture.arch === "i386"
    ? "gdb"
    : "gdb-multiarch";
  const args = ["-batch", "-nx", "-iex", "set debuginfod enabled off"];
  if (options.separateDebug !== true) {
    args.push("-iex", "set debug-file-directory /nonexistent");
  }
  if (fixture.sysroot !== undefined) {
    args.push("-iex", `set sysroot ${fixture.sysroot}`);
  }
  args.push(
    "-ex",
    "set pagination off",
    "-x",
    GDB_FRAMES,
    fixture.program,
    fixture.oracleCore ?? fixture.core,
  );
  const result = await new Deno.Command(gdb, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(GDB_TIMEOUT_MS),
  }).output();
  const stdout = new TextDecoder().decode(result.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith('{"threads"'));
  if (line === undefined) {
    const why = result.signal === null
      ? `exit ${result.code}`
      : `killed by ${result.signal} (timed out?)`;
    throw new Error(
      `${gdb} printed no stack traces for ${fixture.name} (${why}): ${
        new TextDecoder().decode(result.stderr)
      }`,
    );
  }
  const parsed = JSON.parse(line) as {
    threads: {
      num: number;
      tid: number;
      frames: {
        pc: string;
        function: string | null;
        inline: boolean;
        type: string;
      }[];
    }[];
  };
  return parsed.threads.map((thread) => ({
    num: thread.num,
    tid: thread.tid,
    frames: thread.frames.map((frame) => ({
      pc: BigInt(frame.pc),
      function: frame.function,
      inline: frame.inline,
      type: frame.type,
    })),
  }));
}
