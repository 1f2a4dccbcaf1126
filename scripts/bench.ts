/**
 * `deno task bench`: gzcoredump against gzip, pigz, zstd and libdeflate on
 * real cores of real processes, made at run time, in one run on the same
 * files:
 *
 * - a `gcore` of a node process with a large object heap,
 * - a `gcore` of a python process with a large dict,
 * - the kernel's core of a C program (gdb's when core_pattern pipes cores
 *   away).
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
 * (keep the compressed outputs).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { measure } from "./measure.ts";
import { PERMISSION_FLAGS } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    small: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const runs = Math.max(1, Number(values.runs));
const scale = values.small ? 0.1 : 1;
// Small runs keep their own cores and results: the committed table is the
// full one.
const work = `${root}bench/work${values.small ? "-small" : ""}`;
const results = values.small ? work : `${root}bench`;
await Deno.mkdir(work, { recursive: true });

/**
 * Runs argv `runs` times, each into a fresh `output` (its stdout when
 * `toStdout`); fails loudly. Returns the median seconds, the highest peak
 * RSS in MB and the last output's file info.
 */
async function repeat(argv: string[], output: string, toStdout: boolean) {
  const seconds: number[] = [];
  let peakKib = 0;
  for (let i = 0; i < runs; i++) {
    await Deno.remove(output).catch(() => {});
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
  const pattern = (await Deno.readTextFile("/proc/sys/kernel/core_pattern"))
    .trim();
  if (pattern === "core" || pattern === "core.%p") {
    await new Deno.Command("sh", {
      args: ["-c", `ulimit -c unlimited; exec ${program}`],
      cwd: work,
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
      "run",
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

const objects = Math.round(2_000_000 * scale);
const entries = Math.round(3_000_000 * scale);
const cores = [
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

const lines = [
  `gzcoredump benchmark, ${
    new Date().toISOString().slice(0, 10)
  }, ${navigator.hardwareConcurrency} cores, median of ${runs} run(s)`,
  "",
  "| core | operation | tool | seconds | MB/s | output bytes | vs gzip -6 | peak RSS MB | allocated |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
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
await Deno.writeTextFile(
  `${results}/results.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      runs,
      cores: navigator.hardwareConcurrency,
      rows,
    },
    null,
    2,
  ) + "\n",
);
await Deno.writeTextFile(`${results}/results.md`, lines.join("\n") + "\n");
// deno-lint-ignore no-console
console.log(lines.join("\n"));
if (!values.keep) {
  for (const name of ["ours.gz", "ours.zst"]) {
    await Deno.remove(`${work}/${name}`).catch(() => {});
  }
}
