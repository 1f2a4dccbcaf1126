/**
 * Real ELF files of every architecture an embedded host may run, built at
 * test time with Debian's compilers, and their real cores: the kernel's for
 * the host's own x86_64 and i386, qemu-user's for aarch64, armhf, mips and
 * powerpc. Built once per test process, removed when it exits.
 *
 * @module
 */

import {
  check,
  CORE_PATTERN,
  kernelCore,
  listDir,
  runTool,
  TESTDATA,
  waitFor,
} from "./_helpers.ts";

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
      const qemu = await quietQemu(target.qemu);
      const result = await runTool("sh", [
        "-c",
        `ulimit -c unlimited; exec ${qemu} ${program} tiny`,
      ], { cwd: work });
      if (result.code === 0) {
        throw new Error(`${target.arch}: the program did not crash`);
      }
      const name = (await listDir(work)).find((n) => n.endsWith(".core"));
      if (name === undefined) {
        throw new Error(`${target.arch}: qemu wrote no core in ${work}`);
      }
      core = `${work}/${name}`;
      // qemu names the guest's core after its own pid.
      await forgetHostCore(Number(/_(\d+)\.core$/.exec(name)?.[1]));
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

let quiet: Promise<QuietQemu> | undefined;

interface QuietQemu {
  dir: string;
  /** Whether the kernel really dumps nothing of the copies. */
  silent: boolean;
}

/** The group the copies are set-group-id to: any but our own. */
function otherGroup(): number {
  return Deno.gid() === 65534 ? 65533 : 65534;
}

/**
 * A copy of qemu-user (`qemu-aarch64`, ...) that leaves no host core.
 *
 * After it has written the guest's core, qemu kills itself with the guest's
 * signal, and the host kernel dumps qemu's own core through core_pattern:
 * with gzcoredump installed, into the live store. The copy is set-group-id
 * to another group, so at exec the effective gid differs from the real one
 * and the kernel marks the process non-dumpable (`suid_dumpable` 0, the
 * default): it dumps nothing at all, while qemu, which writes the guest's
 * core itself, works as before. Where that does not hold (a `nosuid` mount,
 * `suid_dumpable` not 0), {@linkcode forgetHostCore} removes the record.
 *
 * @param name The qemu program, looked up on PATH.
 * @returns The absolute path of the copy.
 */
export async function quietQemu(name: string): Promise<string> {
  quiet ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "gzcoredump_qemu_" });
    globalThis.addEventListener(
      "unload",
      () => Deno.removeSync(dir, { recursive: true }),
    );
    // The proof that set-group-id takes effect here: id shows the egid.
    await setGroupCopy("/usr/bin/id", `${dir}/id`);
    const ids = await check(`${dir}/id`, []);
    const suidDumpable = (await Deno.readTextFile(SUID_DUMPABLE)).trim();
    return {
      dir,
      silent: new RegExp(`egid=${otherGroup()}\\b`).test(ids) &&
        suidDumpable === "0",
    };
  })();
  const state = quiet;
  let copy = copies.get(name);
  if (copy === undefined) {
    // One copy per name, made once: fixtures built side by side ask for
    // the same qemu, and an exec of a file another call is still writing
    // fails with ETXTBSY ("Text file busy").
    copy = (async () => {
      const { dir } = await state;
      const found = (await check("sh", ["-c", `command -v ${name}`])).trim();
      const path = `${dir}/${name}`;
      await setGroupCopy(found, `${path}.partial`);
      await Deno.rename(`${path}.partial`, path);
      return path;
    })();
    copies.set(name, copy);
  }
  return await copy;
}

/** The qemu copies made or being made, by name. */
const copies = new Map<string, Promise<string>>();

const SUID_DUMPABLE = "/proc/sys/fs/suid_dumpable";

async function setGroupCopy(from: string, to: string): Promise<void> {
  await Deno.copyFile(from, to);
  await Deno.chown(to, null, otherGroup());
  await Deno.chmod(to, 0o2755);
}

/**
 * When the kernel did dump a {@linkcode quietQemu} process (see there) to a
 * handler, waits for the gzcoredump record of `pid` in the store that
 * core_pattern names (`-p DIR`) and removes it. A core_pattern that writes
 * files puts the core in the fixture's directory, which goes anyway.
 */
export async function forgetHostCore(pid: number): Promise<void> {
  if (quiet === undefined || (await quiet).silent) return;
  const pattern = (await Deno.readTextFile(CORE_PATTERN)).trim();
  if (!pattern.startsWith("|")) return;
  const store = /\s-p\s+(\S+)/.exec(pattern)?.[1];
  if (store === undefined || !Number.isSafeInteger(pid)) {
    throw new Error(
      `qemu (pid ${pid}) may have left a host core through '${pattern}'`,
    );
  }
  const stem = await waitFor(async () => {
    for (const name of await listDir(store).catch(() => [])) {
      if (!name.endsWith(".json")) continue;
      const text = await Deno.readTextFile(`${store}/${name}`).catch(() => "");
      let record: { pid?: unknown } = {};
      try {
        record = JSON.parse(text);
      } catch {
        // Not a record (yet).
      }
      if (record.pid === pid) return name.slice(0, -".json".length);
    }
    return undefined;
  }, 60);
  for (const name of await listDir(store)) {
    if (name.startsWith(`${stem}.`)) await Deno.remove(`${store}/${name}`);
  }
}
