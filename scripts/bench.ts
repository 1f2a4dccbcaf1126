/**
 * `deno task bench`: gzcoredump against gzip, pigz, zstd and libdeflate on
 * real cores of real processes, made at run time, in one run on the same
 * files:
 *
 * - a `gcore` of a node process with a large object heap,
 * - a `gcore` of a python process with a large dict,
 * - the kernel's core of a C program (gdb's when core_pattern pipes cores
 *   away),
 * - the kernel's core of a C program whose 1 GiB heap is 30% random bytes,
 *   30% text records and 40% never touched ("mixed"),
 * - 1 GB of random bytes.
 *
 * Also, per 1 MiB block of each: how often the compressor stores a block
 * rather than deflating it, what that decision costs, and how often it is
 * wrong (a stored block that level 5 would have shrunk by 3% or more).
 *
 * Run as root with `GZCOREDUMP_E2E=1`, it also measures what users feel:
 * the time from a crash to the crashed process's release, through the
 * real kernel (core_pattern pointing at each handler in turn, round by
 * round, each crash after a sync, with core_pipe_limit 16), for the mixed
 * program: the kernel writing the core
 * itself, a pure drain (`cat`), `zstd -3 -T0`, `pigz -6` and ours. Both
 * settings are restored afterwards. It runs first, before the cores are
 * made, and a full run repeats it after the compression runs.
 *
 * For each: compression by ours at `-j 1` and at the default, `gzip -6`,
 * `gzip -9`, `pigz -6`, `zstd -3` and `libdeflate-gzip -6`; decompression by
 * ours, `gzip -d`, `pigz -d` and `zstd -d`, each to a file. It prints a table
 * (median seconds of several runs, MB/s, output bytes, ratio to `gzip -6`,
 * peak RSS, and for decompression the blocks the output allocates) and
 * writes the same as JSON to `bench/results.json`.
 *
 * Options: `--runs N` (default 3), `--small` (heaps of a tenth the size, for
 * a quick look; its cores and results stay in `bench/work-small`), `--keep`
 * (keep the compressed outputs), `--release-only` (only the crash to
 * release, into `release.md` and `release.json`: a minute or two), and
 * `--cache-before N` (before each crash, N GiB written to a file in 256 KiB
 * writes and synced, kept until the crash is over: the state that the
 * compression runs leave, in a minute per round; with `--release-only`,
 * into `release_cached.md` and `.json`).
 *
 * Why that state is dear, on the VMs the benchmark has run on: their
 * kernels give free memory back to the host (free page reporting, and a
 * DAMON scheme that pages out page cache untouched for a minute), and a
 * page given back costs a fault on the host when it is next used. Once
 * gigabytes went through the page cache, the pages a handler writes are
 * such pages: after 6 GiB were written and synced, a 1 GiB `dd` took 2.9 s
 * against 0.25 s, and the next one, over the pages the first had freed,
 * 0.24 s.
 *
 * Each crash waits first for the disk to settle (the kernel's I/O pressure,
 * `/proc/pressure/io`, under 1% over 10 s, for at most a minute): after
 * the compression runs, whose gigabytes are deleted on a file system
 * mounted with `discard`, the pure drain took 3.3 s against 1.1-1.6 s in a
 * quiet minute. Even settled, a release measured after them is slower for
 * every handler that writes (below), hence a first measurement before
 * them: in the JSON, `releases` is that one, and
 * `releases_after_compression` the second.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { deflateRawSync } from "node:zlib";
import { looksIncompressible } from "../lib/compress/_deflate_block.ts";
import { isZero } from "../lib/util/mod.ts";
import { measure } from "./measure.ts";
import { PERMISSION_FLAGS } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    small: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "release-only": { type: "boolean", default: false },
    "cache-before": { type: "string", default: "0" },
  },
});
const runs = Math.max(1, Number(values.runs));
const cacheBefore = Number(values["cache-before"]);
if (!Number.isInteger(cacheBefore) || cacheBefore < 0) {
  throw new Error(
    `--cache-before: expected a whole number of GiB, found '${
      values["cache-before"]
    }'`,
  );
}
const scale = values.small ? 0.1 : 1;
// Small runs keep their own cores and results: the committed table is the
// full one.
const work = `${root}bench/work${values.small ? "-small" : ""}`;
const results = values.small ? work : `${root}bench`;
await Deno.mkdir(work, { recursive: true });

/**
 * Runs argv `runs` times, each into a fresh `output` (its stdout when
 * `toStdout`) after a sync; fails loudly. Returns the median seconds, the highest peak
 * RSS in MB and the last output's file info.
 */
async function repeat(argv: string[], output: string, toStdout: boolean) {
  const seconds: number[] = [];
  let peakKib = 0;
  for (let i = 0; i < runs; i++) {
    await Deno.remove(output).catch(() => {});
    // The last run's output written back first: a tool does not pay for
    // the one before it (1 GB of dirty pages took decompression of the
    // random file from 0.7 s to 2-3.5 s).
    await new Deno.Command("sync").output();
    const result = await measure(argv, toStdout ? { stdout: output } : {});
    if (result.code !== 0) {
      throw new Error(`${argv.join(" ")} failed: ${result.stderr}`);
    }
    seconds.push(result.seconds);
    peakKib = Math.max(peakKib, result.peakKib);
  }
  return {
    seconds: median(seconds),
    peak: peakKib / 1024,
    info: await Deno.stat(output),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Starts a process, waits for "ready" on its stdout, gcores it, kills it. */
async function gcoreOf(name: string, argv: string[]): Promise<string> {
  const path = `${work}/${name}.core`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} exited before it was ready`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  await new Deno.Command("gcore", {
    args: ["-o", `${work}/${name}`, String(child.pid)],
    stdout: "null",
    stderr: "null",
  }).output();
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel().catch(() => {});
  await Deno.rename(`${work}/${name}.${child.pid}`, path);
  return path;
}

/** The kernel's core (or gdb's) of a C program with 256 MB of mixed memory. */
async function kernelCore(): Promise<string> {
  const path = `${work}/c_program.core`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  const source = `${work}/bench_crash.c`;
  const mib = Math.round(256 * scale);
  await Deno.writeTextFile(
    source,
    `#include <stdlib.h>
#include <string.h>
int main(void) {
  size_t size = (size_t)${mib} << 20;
  unsigned char *heap = malloc(size);
  /* A third text-like, a third counters, a third untouched zero pages. */
  for (size_t i = 0; i < size / 3; i++) heap[i] = "core dump benchmark "[i % 20];
  unsigned *words = (unsigned *)(heap + size / 3);
  for (size_t i = 0; i < size / 12; i++) words[i] = (unsigned)(i * 2654435761u) >> 20;
  volatile int *volatile null = 0;
  return *null + heap[size - 1];
}
`,
  );
  const program = `${work}/bench_crash`;
  await new Deno.Command("gcc", { args: ["-O1", "-o", program, source] })
    .output();
  return await crashCore(program, [], path);
}

/**
 * Crashes `program` and returns its core at `path`: the kernel's when
 * core_pattern writes files, else gdb's of the same crash (a pipe handler
 * must not get the benchmark's cores).
 */
async function crashCore(
  program: string,
  args: string[],
  path: string,
): Promise<string> {
  const pattern = (await Deno.readTextFile("/proc/sys/kernel/core_pattern"))
    .trim();
  if (pattern === "core" || pattern === "core.%p") {
    await new Deno.Command("sh", {
      args: ["-c", `ulimit -c unlimited; exec ${program} ${args.join(" ")}`],
      cwd: work,
      stdout: "null",
      stderr: "null",
    }).output();
    for await (const entry of Deno.readDir(work)) {
      if (entry.name === "core" || /^core\.\d+$/.test(entry.name)) {
        await Deno.rename(`${work}/${entry.name}`, path);
        return path;
      }
    }
  }
  await new Deno.Command("gdb", {
    args: [
      "-batch",
      "-ex",
      `run ${args.join(" ")} > /dev/null`,
      "-ex",
      `generate-core-file ${path}`,
      program,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  return path;
}

const binary = `${root}bin/gzcoredump`;
const ours = await Deno.stat(binary).then(
  () => [binary],
  () => [Deno.execPath(), "run", ...PERMISSION_FLAGS, `${root}main.ts`],
);

/** A C program with a mixed heap; it prints the time just before it crashes. */
async function mixedProgram(): Promise<string> {
  const program = `${work}/mixed_crash`;
  if (await Deno.stat(program).then(() => true, () => false)) return program;
  const source = `${work}/mixed_crash.c`;
  await Deno.writeTextFile(
    source,
    `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* A heap of 30% random bytes, 30% text records, 40% never touched. */
int main(int argc, char **argv) {
  size_t size = (size_t)atol(argv[1]) << 20;
  unsigned char *heap = malloc(size);
  size_t part = size / 10 * 3;
  unsigned long long x = 88172645463325252ull;
  for (size_t i = 0; i + 8 <= part; i += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    memcpy(heap + i, &x, 8);
  }
  for (size_t i = 0; i + 64 <= part; i += 64) {
    char *r = (char *)heap + part + i;
    int n = snprintf(r, 64, "record %zu name=item%zu value=%zu;", i / 64,
                     (i / 64) % 1000, (i * 7) % 100000);
    memset(r + n, ' ', 64 - n);
  }
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  printf("%lld.%09ld\\n", (long long)t.tv_sec, t.tv_nsec);
  fflush(stdout);
  volatile int *volatile null = 0;
  return *null + heap[size - 1];
}
`,
  );
  const built = await new Deno.Command("gcc", {
    args: ["-O2", "-o", program, source],
  }).output();
  if (!built.success) throw new Error("cannot build the mixed program");
  return program;
}

/** The mixed program's core: the kernel's, or gdb's when cores are piped. */
async function mixedCore(): Promise<string> {
  const path = `${work}/mixed.core`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  const program = await mixedProgram();
  return await crashCore(program, [String(Math.round(1024 * scale))], path);
}

/** Random bytes, which no compressor can shrink. */
async function randomFile(): Promise<string> {
  const path = `${work}/random.bin`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  using file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < Math.round(954 * scale); i++) {
    for (let at = 0; at < chunk.length; at += 65536) {
      crypto.getRandomValues(chunk.subarray(at, at + 65536));
    }
    await file.write(chunk);
  }
  return path;
}

const objects = Math.round(2_000_000 * scale);
const entries = Math.round(3_000_000 * scale);
const releaseOnly = values["release-only"];
const kernelRuns = Deno.env.get("GZCOREDUMP_E2E") === "1" && Deno.uid() === 0;
// The crash to release first, on a quiet machine, as crashes mostly come;
// a full run measures it again after the compression runs, which write and
// delete tens of gigabytes: then even the kernel writing the core itself
// took 2.4-2.6 s instead of 0.9 (in release-only runs just before and
// after), and a handler's time there is mostly what it writes.
const releases: ReleaseRow[] = kernelRuns ? await releaseTimes() : [];
const cores = releaseOnly ? [] : [
  {
    name: "node heap",
    path: await gcoreOf("node_heap", [
      "node",
      "-e",
      `const a=[];for(let i=0;i<${objects};i++)a.push({id:i,name:"obj"+i,tags:["t"+(i%97)],v:Math.random()});console.log("ready");setInterval(()=>a.length,1e6)`,
    ]),
  },
  {
    name: "python dict",
    path: await gcoreOf("python_dict", [
      "python3",
      "-c",
      `import time,sys\nd={f"key{i}":(i,str(i)*3,i*0.5) for i in range(${entries})}\nprint("ready",flush=True)\ntime.sleep(3600)`,
    ]),
  },
  { name: "C program (kernel)", path: await kernelCore() },
  { name: "mixed C program (kernel)", path: await mixedCore() },
  { name: "random bytes", path: await randomFile() },
];

interface Row {
  core: string;
  operation: "compress" | "decompress";
  tool: string;
  seconds: number;
  mb_per_s: number;
  output_bytes: number;
  ratio_to_gzip6: number | null;
  peak_rss_mb: number;
  allocated_bytes?: number;
}
const rows: Row[] = [];

for (const core of cores) {
  const size = (await Deno.stat(core.path)).size;
  const out = `${work}/out`;
  const compressors: [string, string[], boolean][] = [
    ["gzcoredump -j 1", [
      ...ours,
      "-c",
      "-j",
      "1",
      "-f",
      core.path,
      "-o",
      `${out}.gz`,
      "--force",
    ], false],
    ["gzcoredump", [
      ...ours,
      "-c",
      "-f",
      core.path,
      "-o",
      `${out}.gz`,
      "--force",
    ], false],
    ["gzip -6", ["gzip", "-6", "-c", core.path], true],
    ["gzip -9", ["gzip", "-9", "-c", core.path], true],
    ["pigz -6", [
      "pigz",
      "-6",
      "-p",
      String(navigator.hardwareConcurrency),
      "-c",
      core.path,
    ], true],
    ["zstd -3", ["zstd", "-3", "-q", "-c", core.path], true],
    ["zstd -3 -T0", ["zstd", "-3", "-T0", "-q", "-c", core.path], true],
    ["libdeflate-gzip -6", ["libdeflate-gzip", "-6", "-c", core.path], true],
  ];
  const sizes = new Map<string, number>();
  for (const [tool, argv, toStdout] of compressors) {
    const { seconds, peak, info } = await repeat(argv, `${out}.gz`, toStdout);
    sizes.set(tool, info.size);
    rows.push({
      core: core.name,
      operation: "compress",
      tool,
      seconds,
      mb_per_s: size / 1e6 / seconds,
      output_bytes: info.size,
      ratio_to_gzip6: null,
      peak_rss_mb: peak,
    });
    if (tool === "gzcoredump") {
      await Deno.copyFile(`${out}.gz`, `${work}/ours.gz`);
    }
    if (tool === "zstd -3") {
      await Deno.copyFile(`${out}.gz`, `${work}/ours.zst`);
    }
  }
  for (const row of rows.filter((r) => r.core === core.name)) {
    row.ratio_to_gzip6 = row.output_bytes / sizes.get("gzip -6")!;
  }
  const decompressors: [string, string[], boolean][] = [
    ["gzcoredump -d", [
      ...ours,
      "-d",
      "-f",
      `${work}/ours.gz`,
      "-o",
      `${out}.raw`,
      "--force",
    ], false],
    ["gzip -d", ["gzip", "-d", "-c", `${work}/ours.gz`], true],
    ["pigz -d", ["pigz", "-d", "-c", `${work}/ours.gz`], true],
    ["zstd -d", ["zstd", "-d", "-q", "-c", `${work}/ours.zst`], true],
  ];
  for (const [tool, argv, toStdout] of decompressors) {
    const { seconds, peak, info } = await repeat(argv, `${out}.raw`, toStdout);
    if (info.size !== size) {
      throw new Error(`${tool} wrote ${info.size} bytes, expected ${size}`);
    }
    rows.push({
      core: core.name,
      operation: "decompress",
      tool,
      seconds,
      mb_per_s: size / 1e6 / seconds,
      output_bytes: info.size,
      ratio_to_gzip6: null,
      peak_rss_mb: peak,
      allocated_bytes: (info.blocks ?? 0) * 512,
    });
  }
  await Deno.remove(`${out}.raw`).catch(() => {});
  await Deno.remove(`${out}.gz`).catch(() => {});
}

/** How the store-or-deflate decision did on one core. */
interface DecisionRow {
  core: string;
  blocks: number;
  stored: number;
  /** Stored blocks checked against a real deflate (every 8th, for time). */
  checked: number;
  /** Of those, blocks that level 5 would have shrunk by 3% or more. */
  misjudged: number;
  /** Deflated blocks that did not shrink by 3% (time spent for nothing). */
  missed: number;
  /** The decision's mean cost per block, microseconds. */
  micros_per_block: number;
}
const decisions: DecisionRow[] = [];
for (const core of cores) {
  using file = await Deno.open(core.path);
  const block = new Uint8Array(1 << 20);
  const row: DecisionRow = {
    core: core.name,
    blocks: 0,
    stored: 0,
    checked: 0,
    misjudged: 0,
    missed: 0,
    micros_per_block: 0,
  };
  let spent = 0;
  for (;;) {
    let filled = 0;
    while (filled < block.length) {
      const n = await file.read(block.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled === 0) break;
    const data = block.subarray(0, filled);
    if (isZero(data)) continue; // Never deflated: the prebuilt block.
    row.blocks++;
    const started = performance.now();
    const stored = looksIncompressible(data);
    spent += performance.now() - started;
    const shrinks = () =>
      deflateRawSync(data, { level: 5 }).length < data.length * 0.97;
    if (stored) {
      row.stored++;
      if (row.stored % 8 === 1) {
        row.checked++;
        if (shrinks()) row.misjudged++;
      }
    } else if (!shrinks()) row.missed++;
    if (filled < block.length) break;
  }
  row.micros_per_block = row.blocks === 0 ? 0 : spent * 1000 / row.blocks;
  decisions.push(row);
}

/** Crash to release through the real kernel, for each handler. */
interface ReleaseRow {
  handler: string;
  /** The median of the rounds. */
  seconds: number;
  /** Each round's, in the order they ran. */
  rounds: number[];
  stored_bytes: number;
}
const releasesAfter: ReleaseRow[] = kernelRuns && !releaseOnly
  ? await releaseTimes()
  : [];

/**
 * Points core_pattern at each handler in turn (core_pipe_limit 16) and
 * crashes the mixed program: seconds from its last instruction to its
 * release (its exit status reaching the parent), median of the runs.
 */
async function releaseTimes(): Promise<ReleaseRow[]> {
  const program = await mixedProgram();
  const mib = String(Math.round(1024 * scale));
  // Short paths: core_pattern holds 127 bytes.
  const dir = await Deno.makeTempDir({ prefix: "gzb", dir: "/tmp" });
  const deno = Deno.execPath();
  const script = async (name: string, body: string) => {
    await Deno.writeTextFile(
      `${dir}/${name}`,
      `#!/bin/sh
${body}
`,
      {
        mode: 0o755,
      },
    );
    return `${dir}/${name}`;
  };
  const oursArgv = await Deno.stat(binary).then(
    () => `exec ${binary} "$@"`,
    () => `exec ${deno} run ${PERMISSION_FLAGS.join(" ")} ${root}main.ts "$@"`,
  );
  const handlers: [string, string, () => Promise<number>][] = [
    [
      "core (the kernel writes the file)",
      `${dir}/kernel.core`,
      () => Deno.stat(`${dir}/kernel.core`).then((i) => i.size),
    ],
    [
      "|cat > file (pure drain)",
      `|${await script("drain", `exec /bin/cat > ${dir}/drain.out`)}`,
      () => Deno.stat(`${dir}/drain.out`).then((i) => i.size),
    ],
    [
      "|zstd -3 -T0",
      `|${await script(
        "zstd",
        `exec ${await which("zstd")} -3 -T0 -q -f -o ${dir}/zstd.out`,
      )}`,
      () => Deno.stat(`${dir}/zstd.out`).then((i) => i.size),
    ],
    [
      `|pigz -6 -p ${navigator.hardwareConcurrency}`,
      `|${await script(
        "pigz",
        `exec ${await which(
          "pigz",
        )} -6 -p ${navigator.hardwareConcurrency} > ${dir}/pigz.out`,
      )}`,
      () => Deno.stat(`${dir}/pigz.out`).then((i) => i.size),
    ],
    [
      await Deno.stat(binary).then(
        () => "gzcoredump (binary)",
        () => "gzcoredump (launcher)",
      ),
      `|${await script(
        "ours",
        oursArgv,
      )} -c -p ${dir}/s --max-use 100%% --keep-free 0 --rate 999/1h -P %P -t %t -- %e`,
      async () => {
        let size = 0;
        for await (const e of Deno.readDir(`${dir}/s`)) {
          if (e.name.endsWith(".gz")) {
            size = (await Deno.stat(`${dir}/s/${e.name}`)).size;
            await Deno.remove(`${dir}/s/${e.name}`);
          }
        }
        return size;
      },
    ],
  ];
  const patternFile = "/proc/sys/kernel/core_pattern";
  const limitFile = "/proc/sys/kernel/core_pipe_limit";
  const savedPattern = await Deno.readTextFile(patternFile);
  const savedLimit = await Deno.readTextFile(limitFile);
  const rows: ReleaseRow[] = [];
  try {
    await Deno.writeTextFile(limitFile, "16");
    for (const [, pattern] of handlers) {
      if (pattern.length > 127) throw new Error(`pattern too long: ${pattern}`);
    }
    // Round by round, each handler in turn, every crash after a sync: the
    // page cache's writeback of one handler's output does not land on the
    // next one's runs (measured in order, the last handler took up to 40%
    // longer than in turns).
    const seconds: number[][] = handlers.map(() => []);
    const bytes: number[] = handlers.map(() => 0);
    for (let round = 0; round < Math.max(2, runs); round++) {
      for (const [index, [, pattern, stored]] of handlers.entries()) {
        await Deno.writeTextFile(patternFile, pattern);
        if (cacheBefore > 0) {
          const written = await new Deno.Command("dd", {
            args: [
              "if=/dev/zero",
              `of=${dir}/cache.bin`,
              "bs=256K",
              `count=${cacheBefore * 4096}`,
              "status=none",
            ],
          }).output();
          if (!written.success) {
            throw new Error(
              `--cache-before: dd failed: ${
                new TextDecoder().decode(written.stderr)
              }`,
            );
          }
        }
        await new Deno.Command("sync").output();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await ioSettled();
        const child = new Deno.Command("sh", {
          args: ["-c", `ulimit -c unlimited; exec ${program} ${mib}`],
          cwd: dir,
          stdout: "piped",
          stderr: "null",
        }).spawn();
        const out = await new Response(child.stdout).text();
        await child.status;
        const released = Date.now() / 1000;
        seconds[index]!.push(released - Number(out.trim()));
        // The helper may still be finishing (ours compresses the blocks
        // that waited in its spill file, syncs, writes its record): wait
        // for it to exit before the next run, and for its output.
        await helperExit(`${dir}/s`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        bytes[index] = await stored().catch(() => 0);
        await Deno.remove(`${dir}/kernel.core`).catch(() => {});
        await Deno.remove(`${dir}/drain.out`).catch(() => {});
        await Deno.remove(`${dir}/zstd.out`).catch(() => {});
        await Deno.remove(`${dir}/pigz.out`).catch(() => {});
        await Deno.remove(`${dir}/cache.bin`).catch(() => {});
      }
    }
    for (const [index, [handler]] of handlers.entries()) {
      rows.push({
        handler,
        seconds: median(seconds[index]!),
        rounds: seconds[index]!,
        stored_bytes: bytes[index]!,
      });
    }
  } finally {
    await Deno.writeTextFile(patternFile, savedPattern);
    await Deno.writeTextFile(limitFile, savedLimit);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return rows;
}

/** Polls `done` every 100 ms until it is true, at most `seconds`. */
async function waitUntil(
  done: () => Promise<boolean>,
  seconds: number,
): Promise<void> {
  for (let waited = 0; waited < seconds * 10 && !await done(); waited++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits (at most a minute) until the share of time some task waited on
 * I/O over the last 10 s (`/proc/pressure/io`) is under 1%.
 */
function ioSettled(): Promise<void> {
  return waitUntil(async () => {
    const text = await Deno.readTextFile("/proc/pressure/io").catch(() => "");
    return Number(/some avg10=([\d.]+)/.exec(text)?.[1] ?? 0) < 1;
  }, 60);
}

/** Waits (at most 2 minutes) until no process's command line names `path`. */
function helperExit(path: string): Promise<void> {
  return waitUntil(async () =>
    !(await new Deno.Command("pgrep", {
      args: ["-f", `${path} `],
      stdout: "null",
    }).output()).success, 120);
}

async function which(name: string): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `command -v ${name}`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim() || name;
}

const lines = [
  `gzcoredump benchmark, ${
    new Date().toISOString().slice(0, 10)
  }, ${navigator.hardwareConcurrency} cores, median of ${runs} run(s)`,
  ...(releaseOnly ? [] : [
    "",
    "| core | operation | tool | seconds | MB/s | output bytes | vs gzip -6 | peak RSS MB | allocated |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]),
];
for (const core of cores) {
  const size = (await Deno.stat(core.path)).size;
  lines.push(`| ${core.name}: ${(size / 1e6).toFixed(0)} MB | | | | | | | | |`);
  for (const r of rows.filter((row) => row.core === core.name)) {
    lines.push(
      `| | ${r.operation} | ${r.tool} | ${r.seconds.toFixed(2)} | ${
        r.mb_per_s.toFixed(0)
      } | ${r.output_bytes} | ${
        r.ratio_to_gzip6 === null ? "" : r.ratio_to_gzip6.toFixed(3)
      } | ${r.peak_rss_mb.toFixed(0)} | ${
        r.allocated_bytes === undefined
          ? ""
          : `${(r.allocated_bytes / 1e6).toFixed(0)} MB`
      } |`,
    );
  }
}
if (!releaseOnly) {
  lines.push(
    "",
    "Store or deflate, per 1 MiB block that is not all zeros (a stored block is misjudged when level 5 would have shrunk it by 3% or more; every 8th stored block is checked):",
    "",
    "| core | blocks | stored | checked | misjudged | deflated that did not shrink | decision µs/block |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...decisions.map((d) =>
      `| ${d.core} | ${d.blocks} | ${d.stored} | ${d.checked} | ${d.misjudged} | ${d.missed} | ${
        d.micros_per_block.toFixed(0)
      } |`
    ),
  );
}
if (releases.length > 0) {
  const after = releasesAfter.length > 0;
  lines.push(
    "",
    `Crash to release through the kernel, the mixed program (${
      Math.round(1024 * scale)
    } MiB heap), core_pipe_limit 16, the handlers in turns, median of ${
      Math.max(2, runs)
    }${after ? ", before the compression runs and again after them" : ""}${
      cacheBefore > 0
        ? `, each crash after ${cacheBefore} GiB were written and synced`
        : ""
    }:`,
    "",
    after
      ? "| handler | crash to release s, before the compression runs | after them | stored bytes |"
      : "| handler | crash to release s | stored bytes |",
    after ? "| --- | ---: | ---: | ---: |" : "| --- | ---: | ---: |",
    ...releases.map((r, index) =>
      `| ${r.handler.replaceAll("|", "\\|")} | ${r.seconds.toFixed(2)} | ${
        after ? `${releasesAfter[index]!.seconds.toFixed(2)} | ` : ""
      }${r.stored_bytes} |`
    ),
  );
}
const name = releaseOnly
  ? cacheBefore > 0 ? "release_cached" : "release"
  : "results";
await Deno.writeTextFile(
  `${results}/${name}.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      runs,
      cache_before_gib: cacheBefore,
      cores: navigator.hardwareConcurrency,
      rows,
      decisions,
      releases,
      releases_after_compression: releasesAfter,
    },
    null,
    2,
  ) + "\n",
);
await Deno.writeTextFile(`${results}/${name}.md`, lines.join("\n") + "\n");
// deno-lint-ignore no-console
console.log(lines.join("\n"));
if (!values.keep) {
  for (const name of ["ours.gz", "ours.zst"]) {
    await Deno.remove(`${work}/${name}`).catch(() => {});
  }
}
