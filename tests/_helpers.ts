/**
 * Shared test helpers: running `main.ts` exactly as the compiled binary
 * runs, temporary directories, external tools, and real core dumps.
 *
 * @module
 */

import { PERMISSION_FLAGS } from "../scripts/permissions.ts";
import type { CompressEnd } from "../lib/compress/mod.ts";

export const ROOT = new URL("..", import.meta.url).pathname;
export const MAIN = `${ROOT}main.ts`;
export const TESTDATA = `${ROOT}tests/testdata`;

/** What a finished process left. */
export interface RunResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Options for {@linkcode runMain}. */
export interface RunOptions {
  /** Bytes to pipe to stdin, or a file to pipe; stdin is always closed. */
  stdin?: Uint8Array | { path: string };
  cwd?: string;
  env?: Record<string, string>;
  clearEnv?: boolean;
}

/** The argv that runs `main.ts` with the compiled binary's permissions. */
export function mainCommand(): string[] {
  return [Deno.execPath(), "run", ...PERMISSION_FLAGS, MAIN];
}

/** Runs `main.ts` as a subprocess with exactly the compiled permissions. */
export async function runMain(
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const [exe, ...pre] = mainCommand();
  return await runTool(exe!, [...pre, ...args], {
    ...options,
    env: { NO_COLOR: "1", ...options.env },
  });
}

/** Runs any program, feeding stdin and collecting stdout and stderr. */
export async function runTool(
  program: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const child = new Deno.Command(program, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.clearEnv ? { clearEnv: true } : {}),
  }).spawn();
  const feed = (async () => {
    if (options.stdin === undefined) {
      await child.stdin.close();
    } else if (options.stdin instanceof Uint8Array) {
      const writer = child.stdin.getWriter();
      await writer.write(options.stdin).catch(() => {});
      await writer.close().catch(() => {});
    } else {
      using file = await Deno.open(options.stdin.path);
      await file.readable.pipeTo(child.stdin).catch(() => {});
    }
  })();
  const [output] = await Promise.all([child.output(), feed]);
  return {
    code: output.code,
    stdout: output.stdout,
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** Runs a program and throws unless it succeeds; returns stdout as text. */
export async function check(program: string, args: string[]): Promise<string> {
  const result = await runTool(program, args);
  if (result.code !== 0) {
    throw new Error(
      `${program} ${args.join(" ")} exited ${result.code}: ${result.stderr}`,
    );
  }
  return new TextDecoder().decode(result.stdout);
}

/** A temporary directory, removed when disposed. */
export async function tempDir(): Promise<
  { path: string } & AsyncDisposable
> {
  const path = await Deno.makeTempDir({ prefix: "gzcoredump_test_" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/**
 * A temporary directory with a short path (`/tmp/gzXXXXXX`), for paths that
 * must fit in core_pattern's 127 bytes; removed when disposed.
 */
export async function shortTempDir(): Promise<
  { path: string } & AsyncDisposable
> {
  for (;;) {
    const path = `/tmp/gz${crypto.randomUUID().slice(0, 6)}`;
    try {
      await Deno.mkdir(path, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw error;
    }
    return {
      path,
      async [Symbol.asyncDispose]() {
        await Deno.remove(path, { recursive: true });
      },
    };
  }
}

/** The store's own bookkeeping: its lock and the crash-loop counts. */
const STORE_STATE = new Set([".gzcoredump.lock", ".gzcoredump-rate.json"]);

/**
 * Lists a directory's entries, sorted, leaving out the store's bookkeeping
 * files (see {@linkcode listAll} for everything).
 */
export async function listDir(path: string): Promise<string[]> {
  return (await listAll(path)).filter((name) => !STORE_STATE.has(name));
}

/** Lists every entry of a directory, sorted. */
export async function listAll(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

/** Compiles `tests/testdata/crash.c` into `dir` and returns the binary. */
export async function buildCrasher(
  dir: string,
  name = "crasher",
): Promise<string> {
  const out = `${dir}/${name}`;
  await check("gcc", ["-g", "-O0", "-o", out, `${TESTDATA}/crash.c`]);
  return out;
}

/**
 * Makes a real core dump: the kernel's, of a program that really crashed
 * (SIGSEGV) under `ulimit -c unlimited`, when core_pattern writes plain
 * files; otherwise (core_pattern pipes to a handler) gdb writes the core of
 * the same program stopped at its crash, rewritten into the kernel's layout
 * (`tests/testdata/kernel_layout.py`). No process crashes for real then: the
 * handler (say, an installed gzcoredump) never sees a test's crash.
 *
 * @returns The path of the core file in `dir`.
 */
export async function crashCore(dir: string): Promise<string> {
  return await kernelCore(await buildCrasher(dir), [], dir);
}

/**
 * Crashes `program` with `args` in `dir` and returns its core: the
 * kernel's, or gdb's at the same crash when core_pattern pipes cores away.
 */
export async function kernelCore(
  program: string,
  args: string[],
  dir: string,
): Promise<string> {
  const pattern = (await Deno.readTextFile("/proc/sys/kernel/core_pattern"))
    .trim();
  const core = `${dir}/core.${program.split("/").pop()}`;
  if (pattern === "core" || pattern === "core.%p") {
    const result = await runTool("sh", [
      "-c",
      `ulimit -c unlimited && exec ${program} ${args.join(" ")}`,
    ], { cwd: dir });
    if (result.code !== 139 && result.code !== 134) {
      throw new Error(`${program} exited ${result.code}, expected a crash`);
    }
    const name = (await listDir(dir)).find((n) =>
      n === "core" || /^core\.\d+$/.test(n)
    );
    if (name === undefined) {
      throw new Error(
        `the kernel wrote no core in ${dir} (core_pattern '${pattern}')`,
      );
    }
    await Deno.rename(`${dir}/${name}`, core);
    return core;
  }
  // gdb's core has the notes at the end, the kernel's has them first (a
  // streaming reader sees them before the memory): rewrite it into the
  // kernel's layout, the same notes and memory.
  await check("gdb", [
    "-batch",
    "-ex",
    `run ${args.join(" ")}`,
    "-ex",
    `generate-core-file ${core}.gdb`,
    program,
  ]);
  await check("python3", [`${TESTDATA}/kernel_layout.py`, `${core}.gdb`, core]);
  await Deno.remove(`${core}.gdb`);
  return core;
}

/**
 * `gcore` of a live process waiting in `pause()` after it printed a line:
 * `program wait` (by default, the crash program built in `dir`).
 */
export async function liveCore(dir: string, program?: string): Promise<string> {
  program ??= await buildCrasher(dir, "waiter");
  const child = new Deno.Command(program, {
    args: ["wait"],
    stdout: "piped",
    stdin: "null",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    await reader.read(); // "ready"
    reader.releaseLock();
    await check("gcore", ["-o", `${dir}/gcore`, String(child.pid)]);
    return `${dir}/gcore.${child.pid}`;
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
}

/** Reads a 16-bit ELF header field the simple way: e_type of an x86-64 core. */
export function elfType(bytes: Uint8Array): number {
  if (
    bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c ||
    bytes[3] !== 0x46
  ) {
    return -1;
  }
  return new DataView(bytes.buffer, bytes.byteOffset).getUint16(16, true);
}

/** Python's zlib, to check our output with another implementation. */
export async function pythonInflate(
  path: string,
  wbits: number,
): Promise<string> {
  return (await check("python3", [
    "-c",
    `import zlib,sys,hashlib
d=open(sys.argv[1],'rb').read()
o=zlib.decompressobj(${wbits})
x=o.decompress(d)+o.flush()
assert o.eof and not o.unused_data, 'not one complete stream'
print(len(x), hashlib.sha256(x).hexdigest())`,
    path,
  ])).trim();
}

/** sha256 and length of a file, by python, for comparisons. */
export async function fileDigest(path: string): Promise<string> {
  return (await check("python3", [
    "-c",
    `import hashlib,sys
h=hashlib.sha256(); n=0
with open(sys.argv[1],'rb') as f:
    while True:
        b=f.read(1<<20)
        if not b: break
        h.update(b); n+=len(b)
print(n, h.hexdigest())`,
    path,
  ])).trim();
}

/** The host's default store, which tests must leave alone. */
const HOST_STORE = "/var/crash";

/** A private default store: see {@linkcode defaultStore}. */
export interface DefaultStore extends AsyncDisposable {
  /**
   * The private `/var/crash`, as seen from outside (a host path): read,
   * stat or decompress what the tool stored there through it.
   */
  path: string;
  /** A unique word, for `-a` (kept from when the store was the host's). */
  marker: string;
  /** The store's entries, sorted, without its bookkeeping files. */
  files(): Promise<string[]>;
  /**
   * {@linkcode runMain} (same arguments, same result) in a mount namespace
   * of its own where `/var` is a private directory: the tool's `/var/crash`
   * is {@linkcode DefaultStore.path}.
   */
  runMain(args: string[], options?: RunOptions): Promise<RunResult>;
}

/** `unshare` and `mount` by absolute path: a test may clear PATH. */
function systemTool(name: string): string {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // Not there; the next one.
    }
  }
  throw new Error(`${name} not found (util-linux)`);
}

/**
 * The default store `/var/crash`, where capture falls back, made private:
 * `runMain` runs the tool in a mount namespace of its own (`unshare
 * --mount --propagation private`) with a temporary directory of the real
 * file system bind-mounted over `/var`, so the tool really falls back to
 * the path `/var/crash` (and creates it, as on a fresh machine), and the
 * host's `/var/crash` (the live store of an installed gzcoredump) never sees
 * a test's file. Everything else (other mounts, `/tmp`, `/proc`) is the
 * host's. Disposing removes the directory.
 *
 * @example
 * ```ts ignore
 * await using fallback = await defaultStore();
 * const result = await fallback.runMain(["-c", "-p", "/nonexistent/x"], {
 *   stdin: new TextEncoder().encode("core"),
 * });
 * (await fallback.files()).length; // 2: the .gz and the .json
 * ```
 */
export async function defaultStore(): Promise<DefaultStore> {
  const varDir = await Deno.makeTempDir({ prefix: "gzcoredump_var_" });
  // /var's own mode: the tool refuses a store whose parent others can write.
  await Deno.chmod(varDir, 0o755);
  const path = `${varDir}/crash`;
  const marker = `test${crypto.randomUUID().slice(0, 8)}`;
  const hostStoreExisted = await Deno.lstat(HOST_STORE).then(
    () => true,
    () => false,
  );
  const unshare = systemTool("unshare");
  const mount = systemTool("mount");
  return {
    path,
    marker,
    files: async () => await listDir(path).catch(() => []),
    async runMain(args: string[], options: RunOptions = {}) {
      const [exe, ...pre] = mainCommand();
      return await runTool(unshare, [
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        '"$0" --bind "$1" /var && shift && exec "$@"',
        mount,
        varDir,
        exe!,
        ...pre,
        ...args,
      ], { ...options, env: { NO_COLOR: "1", ...options.env } });
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(varDir, { recursive: true });
      // A caller that still ran the plain runMain with `-a marker` stored
      // in the host's /var/crash: take that away again.
      for (const name of await listDir(HOST_STORE).catch(() => [])) {
        if (name.includes(marker)) await Deno.remove(`${HOST_STORE}/${name}`);
      }
      if (!hostStoreExisted) {
        const left = await listAll(HOST_STORE).catch(() => undefined);
        if (left !== undefined && left.every((n) => STORE_STATE.has(n))) {
          await Deno.remove(HOST_STORE, { recursive: true });
        }
      }
    },
  };
}

export const CORE_PATTERN = "/proc/sys/kernel/core_pattern";
export const CORE_PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit";

/**
 * Saves core_pattern and core_pipe_limit; disposing restores both, whatever
 * the test did. Only for tests that run with GZCOREDUMP_E2E=1.
 */
export async function kernelSettings(): Promise<AsyncDisposable> {
  const pattern = await Deno.readTextFile(CORE_PATTERN);
  const limit = await Deno.readTextFile(CORE_PIPE_LIMIT);
  return {
    async [Symbol.asyncDispose]() {
      try {
        await Deno.writeTextFile(CORE_PATTERN, pattern);
      } finally {
        await Deno.writeTextFile(CORE_PIPE_LIMIT, limit);
      }
    },
  };
}

/**
 * Waits for a crash's record in a store to be complete (the sidecar is
 * written first, saying the capture is under way) and returns its name.
 */
export async function waitForRecord(
  store: string,
  seconds = 60,
): Promise<string> {
  return await waitFor(async () => {
    for (const name of await listDir(store).catch(() => [])) {
      if (!name.endsWith(".json")) continue;
      const record = await Deno.readTextFile(`${store}/${name}`)
        .then(JSON.parse, () => undefined);
      if (record?.capture?.state === "done") return name;
    }
    return undefined;
  }, seconds);
}

/** Polls `probe` every 100 ms until it returns a value, or throws on time out. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  seconds: number,
): Promise<T> {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The parts, one after the other, in a new array. */
export function joinBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A small seeded PRNG (mulberry32), for repeatable fuzz tests. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Zeros, text and random bytes in runs of up to 3 MB that do not line up
 * with blocks; `zeros: false` leaves the zero runs out.
 */
export function mixed(
  size: number,
  options: { zeros?: boolean } = {},
): Uint8Array {
  const kinds = options.zeros === false ? 2 : 3;
  const random = seededRandom(size);
  const data = new Uint8Array(size);
  for (let at = 0; at < size;) {
    const run = Math.min(size - at, Math.floor(random() * 3_000_000));
    const kind = 3 - kinds + Math.floor(random() * kinds);
    for (let i = at; i < at + run; i++) {
      data[i] = kind === 0
        ? 0
        : kind === 1
        ? 97 + (i % 26)
        : Math.floor(random() * 256);
    }
    at += run;
  }
  return data;
}

/**
 * Runs a shell command line on a real terminal, as a user types it: in a
 * detached tmux session, its pane 200 columns wide. Returns what the pane
 * showed and the command's exit status.
 */
export async function onTerminal(
  commandLine: string,
): Promise<{ code: number; shown: string }> {
  const session = `gzcoredump_${crypto.randomUUID().slice(0, 8)}`;
  await check("tmux", [
    "new-session",
    "-d",
    "-s",
    session,
    "-x",
    "200",
    "-y",
    "50",
    // Back to ASCII and plain attributes first: a command that wrote binary
    // to the terminal may have switched its character set.
    `${commandLine}; s=$?; printf '\\033(B\\033[0m\\n'; echo "EXIT:$s"; sleep 60`,
  ]);
  try {
    const shown = await waitFor(async () => {
      const pane = await runTool("tmux", [
        "capture-pane",
        "-p",
        "-J",
        "-t",
        session,
      ]);
      const text = new TextDecoder().decode(pane.stdout);
      return /EXIT:\d+/.test(text) ? text : undefined;
    }, 60);
    const code = Number(/EXIT:(\d+)/.exec(shown)![1]);
    return { code, shown: shown.replace(/EXIT:\d+[\s\S]*$/, "") };
  } finally {
    await runTool("tmux", ["kill-session", "-t", session]);
  }
}

/**
 * The open descriptors of process `pid` that reach a spill file
 * (`.gzcoredump-spill-*`), with where they point and their open flags (as
 * `/proc/PID/fdinfo` shows them).
 */
export function spillDescriptors(
  pid: number | "self" = "self",
): { fd: string; target: string; flags: number }[] {
  const found = [];
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
    } catch {
      continue; // closed meanwhile (the listing's own descriptor)
    }
    if (target.includes(".gzcoredump-spill-")) {
      const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${entry.name}`);
      const flags = parseInt(/^flags:\s*(\d+)$/m.exec(info)![1]!, 8);
      found.push({ fd: entry.name, target, flags });
    }
  }
  return found;
}

/**
 * How a compression of the whole input ends when it was not cut and no
 * block waited in a spill file or was stored by the reading thread.
 */
export function wholeEnd(inputBytes: number): CompressEnd {
  return { inputBytes, cut: false, spilledBlocks: 0, storedBlocks: 0 };
}
