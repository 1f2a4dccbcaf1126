/**
 * Real ELF files of every architecture an embedded host may run, built at
 * test time with Debian's compilers, and their real cores: the kernel's for
 * the host's own x86_64 and i386, qemu-user's for aarch64, armhf, mips and
 * powerpc. Built once per test process, removed when it exits.
 *
 * @module
 */

import { check, kernelCore, listDir, runTool, TESTDATA } from "./_helpers.ts";

/** One architecture's program and core. */
export interface ArchFixture {
  /** x86_64, i386, aarch64, armhf, mips, powerpc. */
  arch: string;
  /** The crash program (tests/testdata/crash.c). */
  program: string;
  /** A core of that program, crashed with SIGSEGV in "tiny" mode. */
  core: string;
  /** 64-bit, and little-endian, as the compiler targets. */
  is64: boolean;
  littleEndian: boolean;
  /** How the core was made. */
  coreBy: "kernel" | "qemu";
}

const TARGETS = [
  {
    arch: "x86_64",
    cc: "gcc",
    flags: [],
    qemu: undefined,
    is64: true,
    littleEndian: true,
  },
  {
    arch: "i386",
    cc: "gcc",
    flags: ["-m32"],
    qemu: undefined,
    is64: false,
    littleEndian: true,
  },
  {
    arch: "aarch64",
    cc: "aarch64-linux-gnu-gcc",
    flags: ["-static"],
    qemu: "qemu-aarch64",
    is64: true,
    littleEndian: true,
  },
  {
    arch: "armhf",
    cc: "arm-linux-gnueabihf-gcc",
    flags: ["-static"],
    qemu: "qemu-arm",
    is64: false,
    littleEndian: true,
  },
  {
    arch: "mips",
    cc: "mips-linux-gnu-gcc",
    flags: ["-static"],
    qemu: "qemu-mips",
    is64: false,
    littleEndian: false,
  },
  {
    arch: "powerpc",
    cc: "powerpc-linux-gnu-gcc",
    flags: ["-static"],
    qemu: "qemu-ppc",
    is64: false,
    littleEndian: false,
  },
] as const;

let built: Promise<ArchFixture[]> | undefined;

/** Builds (once) and returns the fixtures of every architecture. */
export function archFixtures(): Promise<ArchFixture[]> {
  built ??= build();
  return built;
}

async function build(): Promise<ArchFixture[]> {
  const dir = await Deno.makeTempDir({ prefix: "gzcoredump_fixtures_" });
  globalThis.addEventListener(
    "unload",
    () => Deno.removeSync(dir, { recursive: true }),
  );
  const fixtures: ArchFixture[] = [];
  for (const target of TARGETS) {
    const work = `${dir}/${target.arch}`;
    await Deno.mkdir(work);
    const program = `${work}/crash_${target.arch}`;
    await check(target.cc, [
      "-g",
      "-O0",
      ...target.flags,
      "-o",
      program,
      `${TESTDATA}/crash.c`,
    ]);
    let core: string;
    if (target.qemu !== undefined) {
      const result = await runTool("sh", [
        "-c",
        `ulimit -c unlimited; exec ${target.qemu} ${program} tiny`,
      ], { cwd: work });
      if (result.code === 0) {
        throw new Error(`${target.arch}: the program did not crash`);
      }
      const name = (await listDir(work)).find((n) => n.endsWith(".core"));
      if (name === undefined) {
        throw new Error(`${target.arch}: qemu wrote no core in ${work}`);
      }
      core = `${work}/${name}`;
    } else {
      core = await kernelCore(program, ["tiny"], work);
    }
    fixtures.push({
      arch: target.arch,
      program,
      core,
      is64: target.is64,
      littleEndian: target.littleEndian,
      coreBy: target.qemu === undefined ? "kernel" : "qemu",
    });
  }
  return fixtures;
}
