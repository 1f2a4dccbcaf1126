/**
 * A stack trace of every thread of a core, from what the core inspector
 * kept in flight (the notes' registers and mappings, each thread's stack
 * from its stack pointer up, the vDSO) and the modules' own files: the
 * crashed process's `/proc/<pid>/map_files/` while it is alive, else the
 * paths the notes name when their build-id is the one the core recorded.
 *
 * @module
 */

import {
  AT_ENTRY,
  ByteReader,
  type CoreModule,
  type CoreReport,
  EM_AARCH64,
  EM_ARM,
  type MemoryRegion,
  PT_LOAD,
  readElf,
  threadRegisters,
} from "../elf/mod.ts";
import { openRegularFile } from "../fs/mod.ts";
import {
  mayWait,
  type Mount,
  mountOf,
  parseMapsDevices,
  parseMountInfo,
} from "../process/mod.ts";
import { errorText, lastAtOrBelow } from "../util/mod.ts";
import {
  loadModuleBytes,
  loadModuleFile,
  type ModuleImage,
} from "./module_image.ts";
import {
  canUnwind,
  type FrameTrust,
  type UnwindTarget,
  unwindThread,
} from "./unwinder.ts";

/** One frame of a trace, named. */
export interface TraceFrame {
  /** The PC. */
  pc: bigint;
  /** How the frame was found. */
  trust: FrameTrust;
  /** The module it is in. */
  module?: string;
  /** The module's GNU build-id. */
  buildId?: string;
  /** The PC's offset from the module's start. */
  offset?: bigint;
  /** The function it is in, from the module's symbol table. */
  function?: string;
  /** The PC's offset into that function. */
  functionOffset?: bigint;
}

/** One thread's trace. */
export interface ThreadTrace {
  /** Thread id. */
  tid: number;
  /** Its name, `/proc/<pid>/task/<tid>/comm`, while the process is alive. */
  name?: string;
  /** True for the thread that crashed (the core's first). */
  crashed: boolean;
  /** Its frames, innermost first. */
  frames: TraceFrame[];
  /** Why its walk stopped early, when it did. */
  error?: string;
}

/** Every thread's trace. */
export interface Backtrace {
  /** Crashing thread first. */
  threads: ThreadTrace[];
  /** Why there is no full trace, when there is not. */
  error?: string;
}

/** Options for {@linkcode backtraceCore}. */
export interface BacktraceOptions {
  /**
   * The module files and thread names of the crashed process, taken while
   * it was alive ({@linkcode openProcessFiles}).
   *
   * @default {undefined}
   */
  process?: ProcessFiles;
  /**
   * The program's file, for a core whose notes do not name it (qemu's); it
   * is placed at `AT_ENTRY` less its entry point.
   *
   * @default {undefined}
   */
  exe?: string;
  /**
   * Stop unwinding when `performance.now()` passes this.
   *
   * @default {Infinity}
   */
  deadline?: number;
  /**
   * Threads traced at most.
   *
   * @default {64}
   */
  maxThreads?: number;
  /**
   * Frames per thread at most.
   *
   * @default {64}
   */
  maxFrames?: number;
  /**
   * Which paths the notes name a module is read from (when its build-id is
   * the core's) where no open file of it was given: `all`; `local`, none on
   * a FUSE or network file system (a capture: the crashed process may be
   * the FUSE server, frozen); or `none`.
   *
   * @default {"all"}
   */
  paths?: "all" | "local" | "none";
  /**
   * Where a module's file is found by its build-id when it is not here
   * (debuginfod's `/buildid/ID/executable`): a path, or undefined.
   *
   * @default {undefined}
   */
  fetchModule?: (buildId: string) => Promise<string | undefined>;
}

/** Modules loaded at most. */
const MAX_MODULES = 128;
/** Bytes of module sections (CFI, symbols) read at most for one trace. */
const SECTION_BUDGET = 8 << 20;

/**
 * Traces every thread of a core.
 *
 * @example A core with no notes gives no threads, and says why
 * ```ts
 * import { backtraceCore } from "./backtrace.ts";
 * import assert from "node:assert/strict";
 *
 * const trace = await backtraceCore({ size: 0, programs: [], modules: [], memory: [], truncated: false });
 * assert.deepEqual(trace, { threads: [], error: "the core has no notes" });
 * ```
 *
 * @param report What the core inspector read of the core.
 * @param options The live process, the program's file, limits.
 * @returns The threads' traces; never throws.
 */
export async function backtraceCore(
  report: CoreReport,
  options: BacktraceOptions = {},
): Promise<Backtrace> {
  const { header, notes } = report;
  if (header === undefined || notes === undefined) {
    return { threads: [], error: "the core has no notes" };
  }
  const { maxThreads = 64, maxFrames = 64, deadline = Infinity } = options;
  using space = new AddressSpace(report, options);
  await space.addExe();
  const supported = canUnwind(header.machine);
  const threads: ThreadTrace[] = [];
  for (const [index, thread] of notes.threads.slice(0, maxThreads).entries()) {
    const trace: ThreadTrace = {
      tid: thread.tid,
      crashed: index === 0,
      frames: [],
    };
    const name = options.process?.names.get(thread.tid);
    if (name !== undefined) trace.name = name;
    threads.push(trace);
    const registers = threadRegisters(header.machine, thread.registers);
    if (registers === undefined) {
      trace.error = "the thread's registers are not readable";
      continue;
    }
    try {
      const result = await unwindThread(registers, space.target, {
        maxFrames,
        deadline,
      });
      if (result.error !== undefined) trace.error = result.error;
      for (const frame of result.frames) {
        trace.frames.push(await space.name(frame.pc, frame.trust, frame.exact));
      }
    } catch (error) {
      trace.error = errorText(error);
    }
  }
  const result: Backtrace = { threads };
  if (!supported) result.error = "unsupported architecture";
  return result;
}

/** The process's memory and modules, as the unwinder reads them. */
class AddressSpace implements Disposable {
  readonly target: UnwindTarget;
  readonly #report: CoreReport;
  readonly #options: BacktraceOptions;
  readonly #memory: MemoryRegion[];
  /** A reader over each region of `#memory`. */
  readonly #readers: ByteReader[];
  readonly #images = new Map<CoreModule, Promise<ModuleImage | undefined>>();
  readonly #modules: CoreModule[];
  readonly #budget = { bytes: SECTION_BUDGET };

  constructor(report: CoreReport, options: BacktraceOptions) {
    this.#report = report;
    this.#options = options;
    this.#memory = [...report.memory].sort((a, b) =>
      a.address < b.address ? -1 : 1
    );
    const header = report.header!;
    this.#readers = this.#memory.map((region) =>
      new ByteReader(region.bytes, {
        is64: header.class === 64,
        littleEndian: header.littleEndian,
      })
    );
    this.#modules = [...report.modules].sort(byStart);
    // Executable segments by address: a stack scan asks of every word.
    const code = report.programs.filter((p) =>
      p.type === PT_LOAD && (p.flags & 1) !== 0
    ).map((p) => ({ start: p.vaddr, end: p.vaddr + p.memsz })).sort(byStart);
    let highest = 0n;
    for (const p of report.programs) {
      if (p.type === PT_LOAD && p.vaddr + p.memsz > highest) {
        highest = p.vaddr + p.memsz;
      }
    }
    const target: UnwindTarget = {
      machine: header.machine,
      littleEndian: header.littleEndian,
      read: (address, size) => this.#read(address, size),
      module: (address) => this.#image(address),
      isCode: (address) =>
        rangeAt(code, address) !== undefined &&
        this.#moduleAt(address) !== undefined,
      code: (address, size) => this.#code(address, size),
    };
    const entry = report.notes?.auxv.get(AT_ENTRY);
    if (entry !== undefined) target.entry = entry;
    // A Thumb return address has bit 0 set: the code is at the even one.
    if (header.machine === EM_ARM) target.codeMask = 1n;
    if (header.machine === EM_AARCH64) {
      const pac = report.notes?.pacMask;
      const bits = Math.max(39, highest.toString(2).length);
      target.codeMask = pac ??
        ~((1n << BigInt(bits)) - 1n) & 0xffffffffffffffffn;
    }
    this.target = target;
  }

  /** Names a frame: its module, offset and function. */
  async name(
    pc: bigint,
    trust: FrameTrust,
    exact: boolean,
  ): Promise<TraceFrame> {
    const frame: TraceFrame = { pc, trust };
    const module = this.#moduleAt(pc);
    if (module === undefined) return frame;
    frame.module = module.path;
    const image = await this.#image(pc).catch(() => undefined);
    const buildId = module.buildId ?? image?.buildId;
    if (buildId !== undefined) frame.buildId = buildId;
    frame.offset = pc - module.start;
    const symbols = image?.symbols;
    if (image !== undefined && symbols !== undefined) {
      const at = pc - image.bias;
      const found = symbols.lookup(exact ? at : at - 1n);
      if (found !== undefined) {
        frame.function = found.name;
        frame.functionOffset = at - (exact ? at : at - 1n) + found.offset;
      }
    }
    return frame;
  }

  /** Where `size` bytes at `address` are in the kept memory, if they are. */
  #kept(
    address: bigint,
    size: number,
  ): { region: number; at: number } | undefined {
    const memory = this.#memory;
    const region = lastAtOrBelow(
      memory.length,
      address,
      (i) => memory[i]!.address,
    );
    if (region === -1) return undefined;
    const at = address - memory[region]!.address;
    if (at + BigInt(size) > BigInt(memory[region]!.bytes.length)) {
      return undefined;
    }
    return { region, at: Number(at) };
  }

  #read(address: bigint, size: number): bigint | undefined {
    const kept = this.#kept(address, size);
    if (kept === undefined) return undefined;
    const reader = this.#readers[kept.region]!;
    switch (size) {
      case 1:
        return BigInt(reader.u8(kept.at, "memory"));
      case 2:
        return BigInt(reader.u16(kept.at, "memory"));
      case 4:
        return BigInt(reader.u32(kept.at, "memory"));
      case 8:
        return reader.u64(kept.at, "memory");
      default:
        return undefined;
    }
  }

  /** Code bytes: from the core where it kept them, else the module's file. */
  async #code(address: bigint, size: number): Promise<Uint8Array | undefined> {
    const kept = this.#kept(address, size);
    if (kept !== undefined) {
      return this.#memory[kept.region]!.bytes.slice(kept.at, kept.at + size);
    }
    const image = await this.#image(address).catch(() => undefined);
    return await image?.code?.(address, size);
  }

  #moduleAt(address: bigint): CoreModule | undefined {
    return rangeAt(this.#modules, address);
  }

  #image(address: bigint): Promise<ModuleImage | undefined> {
    const module = this.#moduleAt(address);
    if (module === undefined) return Promise.resolve(undefined);
    let image = this.#images.get(module);
    if (image === undefined) {
      // Past the deadline no module is loaded any more.
      const late = performance.now() > (this.#options.deadline ?? Infinity);
      image = this.#images.size >= MAX_MODULES || late
        ? Promise.resolve(undefined)
        : this.#load(module);
      this.#images.set(module, image);
    }
    return image;
  }

  /**
   * Places the `--exe` program, for a core whose notes name no file of it
   * (qemu's): at `AT_ENTRY` less its entry point.
   */
  async addExe(): Promise<void> {
    const exe = this.#options.exe;
    if (exe === undefined) return;
    const entry = this.#report.notes?.auxv.get(AT_ENTRY);
    if (
      entry !== undefined &&
      this.#modules.some((m) => m.start <= entry && entry < m.end)
    ) return;
    try {
      using file = await openRegularFile(exe);
      const elf = await readElf(file);
      const bias = entry === undefined ? 0n : entry - elf.header.entry;
      let start: bigint | undefined;
      let end = 0n;
      for (const p of elf.programs) {
        if (p.type !== PT_LOAD) continue;
        const low = (p.vaddr & ~0xfffn) + bias;
        if (start === undefined || low < start) start = low;
        if (p.vaddr + p.memsz + bias > end) end = p.vaddr + p.memsz + bias;
      }
      if (start !== undefined) {
        this.#modules.push({ path: exe, start, end });
        this.#modules.sort(byStart);
      }
    } catch {
      // The program cannot be read: its frames stay unnamed.
    }
  }

  #mounts: Promise<Mount[]> | undefined;
  /** Files opened for modules: their code is read while the walk runs. */
  readonly #opened: Deno.FsFile[] = [];

  #keep(file: Deno.FsFile): Deno.FsFile {
    this.#opened.push(file);
    return file;
  }

  [Symbol.dispose](): void {
    for (const file of this.#opened.splice(0)) file.close();
  }

  /** Whether the path a module's notes name may be opened. */
  async #mayOpen(path: string): Promise<boolean> {
    const paths = this.#options.paths ?? "all";
    if (paths !== "local") return paths === "all";
    this.#mounts ??= Deno.readTextFile("/proc/self/mountinfo").then(
      parseMountInfo,
      () => [],
    );
    const mount = mountOf(path, await this.#mounts);
    return mount !== undefined && !mayWait(mount.fsType);
  }

  async #load(module: CoreModule): Promise<ModuleImage | undefined> {
    const options = {
      path: module.path,
      start: module.start,
      budget: this.#budget,
      ...(this.#options.deadline === undefined
        ? {}
        : { deadline: this.#options.deadline }),
    };
    if (module.path === "[vdso]") {
      const region = this.#memory.find((r) =>
        r.kind === "vdso" && r.address === module.start
      );
      return region && await loadModuleBytes(region.bytes, options);
    }
    const failures: string[] = [];
    const open = this.#options.process?.files.get(module.path);
    if (open !== undefined) {
      const image = await loadModuleFile(open, options);
      if (module.buildId === undefined || image.buildId === module.buildId) {
        return image;
      }
      failures.push(
        `the mapped file has build-id ${
          image.buildId ?? "none"
        }, the core's is ${module.buildId}`,
      );
    }
    if (module.path.startsWith("/") && await this.#mayOpen(module.path)) {
      try {
        const file = this.#keep(
          await openRegularFile(module.path, {
            noFollow: module.path !== this.#options.exe,
          }),
        );
        const image = await loadModuleFile(file, options);
        if (module.path === this.#options.exe) return image;
        if (module.buildId === undefined) {
          failures.push(
            `'${module.path}': the core does not record its build-id, so the file cannot be checked`,
          );
        } else if (image.buildId !== module.buildId) {
          failures.push(
            `'${module.path}' has build-id ${
              image.buildId ?? "none"
            }, the core's is ${module.buildId}`,
          );
        } else {
          return image;
        }
      } catch (error) {
        failures.push(errorText(error));
      }
    }
    const fetched = module.buildId === undefined
      ? undefined
      : await this.#options.fetchModule?.(module.buildId).catch(() =>
        undefined
      );
    if (fetched !== undefined) {
      try {
        const file = this.#keep(
          await openRegularFile(fetched, { noFollow: true }),
        );
        const image = await loadModuleFile(file, options);
        if (image.buildId === module.buildId) return image;
        failures.push(
          `'${fetched}' has build-id ${
            image.buildId ?? "none"
          }, the core's is ${module.buildId}`,
        );
      } catch (error) {
        failures.push(errorText(error));
      }
    }
    return {
      path: module.path,
      start: module.start,
      bias: 0n,
      error: failures.join("; ") || "no file to read",
    };
  }
}

/** Orders ranges by their start. */
function byStart(a: { start: bigint }, b: { start: bigint }): number {
  return a.start < b.start ? -1 : a.start > b.start ? 1 : 0;
}

/**
 * The range of `sorted` (by start) that holds `address`: the last to start
 * at or below it, or one of the few before it where ranges overlap.
 */
function rangeAt<T extends { start: bigint; end: bigint }>(
  sorted: readonly T[],
  address: bigint,
): T | undefined {
  const found = lastAtOrBelow(sorted.length, address, (i) => sorted[i]!.start);
  for (let i = found; i >= 0 && i > found - 8; i--) {
    if (address < sorted[i]!.end) return sorted[i];
  }
  return undefined;
}

/** Module files and thread names, taken from a live process. */
export interface ProcessFiles extends Disposable {
  /** Each mapped file, opened through `/proc/<pid>/map_files/`, by its path. */
  files: Map<string, Deno.FsFile>;
  /** Each thread's name, by tid. */
  names: Map<number, string>;
}

/**
 * Opens, while the crashed process is alive, each file it mapped (through
 * `/proc/<pid>/map_files/`, which reaches the exact file even in another
 * mount namespace, or deleted) and reads its threads' names, so that the
 * process can be let go before the unwinding starts. Only regular files
 * are opened, without blocking, and none on a FUSE or network file system
 * (`/proc/<pid>/maps` and `mountinfo` say which); what cannot be opened is
 * left out.
 *
 * @example Usage
 * ```ts
 * import { openProcessFiles } from "./backtrace.ts";
 * import assert from "node:assert/strict";
 *
 * using files = await openProcessFiles({ size: 0, programs: [], modules: [], memory: [], truncated: false }, Deno.pid);
 * assert.equal(files.files.size, 0);
 * ```
 *
 * @param report The core inspector's report (its notes name the files).
 * @param pid The crashed process.
 * @returns The open files; dispose of them to close them.
 */
export async function openProcessFiles(
  report: CoreReport,
  pid: number,
): Promise<ProcessFiles> {
  const files = new Map<string, Deno.FsFile>();
  const names = new Map<number, string>();
  // The device of each mapped file, and what is mounted there: a file on
  // FUSE or a network file system is not opened (its server may be the
  // frozen process itself).
  const read = (name: string) =>
    Deno.readTextFile(`/proc/${pid}/${name}`).catch(() => "");
  const devices = parseMapsDevices(await read("maps"));
  const mounts = parseMountInfo(await read("mountinfo"));
  const waits = (path: string) => {
    const device = devices.get(path);
    const mount = mounts.find((m) => m.device === device);
    return device === undefined || mount === undefined || mayWait(mount.fsType);
  };
  for (const mapping of report.notes?.files ?? []) {
    if (mapping.fileOffset !== 0n || files.has(mapping.path)) continue;
    if (files.size >= MAX_MODULES) break;
    if (waits(mapping.path)) continue;
    try {
      files.set(
        mapping.path,
        await openRegularFile(
          `/proc/${pid}/map_files/${mapping.start.toString(16)}-${
            mapping.end.toString(16)
          }`,
        ),
      );
    } catch {
      // Gone, or not a regular file: the path, checked, is the fallback.
    }
  }
  for (const thread of (report.notes?.threads ?? []).slice(0, 64)) {
    try {
      names.set(
        thread.tid,
        (await Deno.readTextFile(`/proc/${pid}/task/${thread.tid}/comm`))
          .trim(),
      );
    } catch {
      // The thread is gone.
    }
  }
  return {
    files,
    names,
    [Symbol.dispose]() {
      for (const file of files.values()) file.close();
      files.clear();
    },
  };
}
