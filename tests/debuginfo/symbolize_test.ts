/**
 * Symbolising later: a stripped program's crash, stored with its frames
 * unnamed, named on this host by `info --symbolize` from a real debuginfod
 * server (elfutils', started on a loopback port over `objcopy
 * --only-keep-debug` files), from `--debug-dir`, and from the cache once
 * the server is gone; checked against eu-addr2line on the unstripped
 * program. A server that serves another build is refused.
 */

import assert from "node:assert/strict";
import {
  check,
  kernelCore,
  runMain,
  tempDir,
  TESTDATA,
  waitFor,
} from "../_helpers.ts";
import { storeCore } from "../_store.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

interface Frame {
  pc: string;
  module: string | null;
  build_id: string | null;
  offset: string | null;
  function: string | null;
  symbol_source?: string;
  file?: string;
  line?: number;
}

/** A stripped program, its debug file, and a stored crash of it. */
async function strippedCrash(
  dir: string,
  options: { dwarf?: string[]; objcopy?: string[] } = {},
) {
  const full = `${dir}/prog.full`;
  await check("gcc", [
    ...(options.dwarf ?? ["-g"]),
    "-O2",
    "-pthread",
    "-o",
    full,
    `${TESTDATA}/unwind/unwind.c`,
  ]);
  const debugDir = `${dir}/debug`;
  await Deno.mkdir(debugDir);
  const debug = `${debugDir}/prog.debug`;
  await check("objcopy", [
    "--only-keep-debug",
    ...(options.objcopy ?? []),
    full,
    debug,
  ]);
  const program = `${dir}/prog`;
  await check("strip", ["-o", program, full]);
  const core = await kernelCore(program, ["segv"], dir);
  const store = `${dir}/store`;
  const { archive: name, metadata } = await storeCore(store, core, "prog");
  return { full, debug, debugDir, program, store, name, metadata, core };
}

/** The program's frames, and what eu-addr2line names them on `full`. */
async function programFrames(
  frames: Frame[],
  program: string,
  full: string,
): Promise<
  {
    ours: (string | null)[];
    addr2line: string[];
    lines: string[];
    sources: string[];
  }
> {
  const own = frames.filter((f) => f.module === program);
  // A PIE's module offsets are its addresses; a return address is named
  // by the call before it, as gdb and eu-addr2line -f name it.
  const addresses = own.map((f, i) =>
    `0x${
      (BigInt(f.offset!) - (i === 0 && frames[0] === f ? 0n : 1n)).toString(16)
    }`
  );
  const out = await check("eu-addr2line", ["-f", "-e", full, ...addresses]);
  const lines = out.trim().split("\n");
  const addr2line = lines.filter((_, i) => i % 2 === 0);
  // `file:line:column`: the column is not kept.
  const sources = lines.filter((_, i) => i % 2 === 1).map((l) =>
    l.replace(/:\d+$/, "")
  );
  return {
    ours: own.map((f) => f.function),
    addr2line,
    // eu-addr2line's "??" where no row covers the address (_start).
    lines: own.map((f) => f.file === undefined ? "??" : `${f.file}:${f.line}`),
    sources,
  };
}

async function info(
  args: string[],
  env: Record<string, string>,
): Promise<Frame[]> {
  const result = await runMain(["info", ...args, "--json"], { env });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(text(result.stdout)).backtrace[0].frames;
}

/** Puts a debug file in a build-id tree, as /usr/lib/debug/.build-id has it. */
async function buildIdTree(root: string, buildId: string, debug: string) {
  const dir = `${root}/.build-id/${buildId.slice(0, 2)}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.copyFile(debug, `${dir}/${buildId.slice(2)}.debug`);
}

/** A free loopback port. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("symbolize: a stripped program's frames are named through a real debuginfod, then from the cache", async () => {
  await using dir = await tempDir();
  const crash = await strippedCrash(dir.path);
  const { program, full, store, name } = crash;
  const buildId = crash.metadata.build_id as string;
  // Stored unnamed: what ran has no symbol table.
  const stored = crash.metadata.backtrace[0].frames as Frame[];
  assert.ok(stored.filter((f) => f.module === program).length >= 4);
  assert.ok(
    stored.filter((f) => f.module === program).every((f) =>
      f.function === null
    ),
  );

  const port = freePort();
  // The server has the debug file and the program as it ran.
  await Deno.copyFile(program, `${crash.debugDir}/prog`);
  const server = new Deno.Command("debuginfod", {
    args: [
      "-F",
      crash.debugDir,
      "-p",
      String(port),
      "-d",
      `${dir.path}/debuginfod.sqlite`,
      "-t",
      "1",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const cache = `${dir.path}/cache`;
  const env = { DEBUGINFOD_URLS: url, XDG_CACHE_HOME: cache };
  try {
    // Until it has scanned both files.
    for (const kind of ["debuginfo", "executable"]) {
      await waitFor(async () => {
        const response = await fetch(`${url}/buildid/${buildId}/${kind}`)
          .catch(() => undefined);
        await response?.body?.cancel();
        return response?.ok || undefined;
      }, 60);
    }
    const frames = await info([name, "-p", store, "--symbolize"], env);
    const { ours, addr2line } = await programFrames(frames, program, full);
    assert.deepEqual(ours.slice(0, 4), [
      "crash_level3",
      "crash_level2",
      "crash_level1",
      "main",
    ]);
    assert.deepEqual(ours, addr2line);
    // Named at capture time too, with --symbolize-online.
    const online = await storeCore(store, crash.core, "online", [
      "--symbolize-online",
      url,
    ], env);
    const onlineFrames = online.metadata.backtrace[0].frames as Frame[];
    assert.equal(onlineFrames[0]!.function, "crash_level3");
    assert.match(onlineFrames[0]!.file!, /unwind\.c$/);
    const cached = `${cache}/gzcoredump/debuginfod/${buildId}/debuginfo`;
    assert.equal(frames[0]!.symbol_source, cached);
    assert.equal((await Deno.stat(cached)).mode! & 0o777, 0o600);
    assert.equal(
      (await Deno.stat(`${cache}/gzcoredump/debuginfod`)).mode! & 0o777,
      0o700,
    );
    // The raw core on a host without the program: its file comes from the
    // server too (/executable), so the trace goes down to main.
    await Deno.rename(program, `${program}.elsewhere`);
    try {
      const raw = await info([crash.core, "--symbolize"], env);
      const names = raw.map((f) => f.function);
      assert.deepEqual(names.slice(0, 4), [
        "crash_level3",
        "crash_level2",
        "crash_level1",
        "main",
      ]);
      assert.ok(
        (await Deno.stat(
          `${cache}/gzcoredump/debuginfod/${buildId}/executable`,
        ))
          .isFile,
      );
    } finally {
      await Deno.rename(`${program}.elsewhere`, program);
    }
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
  // The server is gone: the cache answers.
  const again = await info([name, "-p", store, "--symbolize"], env);
  assert.equal(again[0]!.function, "crash_level3");
  // No DEBUGINFOD_URLS: no network, no cache, no names.
  const offline = await info([name, "-p", store, "--symbolize"], {
    XDG_CACHE_HOME: cache,
  });
  assert.equal(offline[0]!.function, null);
});

Deno.test("symbolize: --debug-dir finds the debug file by build-id; a server serving another build is refused", async () => {
  await using dir = await tempDir();
  const crash = await strippedCrash(dir.path);
  const { program, full, store, name, debug } = crash;
  const buildId = crash.metadata.build_id as string;
  await buildIdTree(`${dir.path}/tree`, buildId, debug);
  const frames = await info([
    name,
    "-p",
    store,
    "--debug-dir",
    `${dir.path}/nothing-here`,
    "--debug-dir",
    `${dir.path}/tree`,
  ], {});
  const { ours, addr2line } = await programFrames(frames, program, full);
  assert.deepEqual(ours, addr2line);
  assert.equal(ours[0], "crash_level3");

  // A server that answers every build-id with another program's file.
  const port = freePort();
  const controller = new AbortController();
  const wrong = await Deno.readFile("/bin/true");
  const served = Deno.serve({
    hostname: "127.0.0.1",
    port,
    signal: controller.signal,
    onListen: () => {},
  }, () => new Response(wrong));
  const cache = `${dir.path}/cache`;
  try {
    const refused = await info([name, "-p", store, "--symbolize"], {
      DEBUGINFOD_URLS: `http://127.0.0.1:${port}`,
      XDG_CACHE_HOME: cache,
    });
    assert.equal(refused[0]!.function, null);
    // Nothing of it was kept.
    const kept = await Array.fromAsync(
      Deno.readDir(`${cache}/gzcoredump/debuginfod/${buildId}`),
    );
    assert.deepEqual(kept, []);
  } finally {
    controller.abort();
    await served.finished;
  }
});

for (
  const [label, dwarf, objcopy] of [
    ["DWARF 4", ["-gdwarf-4"], []],
    ["DWARF 5", ["-gdwarf-5"], []],
    ["DWARF 5, compressed", ["-gdwarf-5"], ["--compress-debug-sections=zlib"]],
  ] as const
) {
  Deno.test(`symbolize: file and line from the debug file's ${label} line table, as eu-addr2line says`, async () => {
    await using dir = await tempDir();
    const crash = await strippedCrash(dir.path, {
      dwarf: [...dwarf],
      objcopy: [...objcopy],
    });
    const { program, full, store, name, debug } = crash;
    if (objcopy.length > 0) {
      const sections = await check("readelf", ["-SW", debug]);
      assert.match(sections, /\.debug_line\s.*\sC\s/, "compressed");
    }
    await buildIdTree(`${dir.path}/tree`, crash.metadata.build_id, debug);
    const frames = await info([
      name,
      "-p",
      store,
      "--debug-dir",
      `${dir.path}/tree`,
    ], {});
    const { ours, addr2line, lines, sources } = await programFrames(
      frames,
      program,
      full,
    );
    assert.deepEqual(ours, addr2line);
    assert.deepEqual(lines, sources);
    assert.match(lines[0]!, /unwind\.c:\d+$/);
  });
}

for (
  const [label, dwarf, withoutSymtab] of [
    ["DWARF 4", "-gdwarf-4", false],
    ["DWARF 5", "-gdwarf-5", false],
    ["DWARF 5, the debug file without .symtab", "-gdwarf-5", true],
  ] as const
) {
  Deno.test(`symbolize: inlined functions from ${label}, as eu-addr2line -i lists them`, async () => {
    await using dir = await tempDir();
    const source = `${dir.path}/inl.c`;
    await Deno.writeTextFile(
      source,
      `static volatile int sink;
static inline __attribute__((always_inline)) void inner(int *p) {
  sink = 1;
  *p = 1;
}
static inline __attribute__((always_inline)) void middle(int *p) {
  sink = 2;
  inner(p);
}
__attribute__((noinline)) void outer(int *p) {
  middle(p);
  sink = 3;
}
int main(void) { outer(0); return 0; }
`,
    );
    const full = `${dir.path}/inl.full`;
    await check("gcc", [dwarf, "-O2", "-o", full, source]);
    const debug = `${dir.path}/inl.debug`;
    await check("objcopy", ["--only-keep-debug", full, debug]);
    if (withoutSymtab) {
      await check("objcopy", [
        "--remove-section=.symtab",
        "--remove-section=.strtab",
        debug,
      ]);
    }
    const program = `${dir.path}/inl`;
    await check("strip", ["-o", program, full]);
    const core = await kernelCore(program, [], dir.path);
    const store = `${dir.path}/store`;
    const { archive: name, metadata } = await storeCore(store, core, "inl");
    await buildIdTree(`${dir.path}/tree`, metadata.build_id, debug);
    const [top] = await info(
      [name, "-p", store, "--debug-dir", `${dir.path}/tree`],
      {},
    ) as (Frame & {
      inlined?: { function: string; file: string; line: number }[];
    })[];
    // eu-addr2line -i on the unstripped program: innermost first, each a
    // name line (the first word is the function) and a file:line:column.
    const lines =
      (await check("eu-addr2line", ["-i", "-f", "-e", full, top!.offset!]))
        .trim().split("\n");
    const expected = [];
    for (let i = 0; i + 1 < lines.length; i += 2) {
      expected.push(
        `${lines[i]!.split(" ")[0]} ${lines[i + 1]!.replace(/:\d+$/, "")}`,
      );
    }
    const ours = [
      ...(top!.inlined ?? []).map((f) => `${f.function} ${f.file}:${f.line}`),
      `${top!.function} ${top!.file}:${top!.line}`,
    ];
    assert.deepEqual(ours, expected);
    assert.deepEqual(ours.map((l) => l.split(" ")[0]), [
      "inner",
      "middle",
      "outer",
    ]);
  });
}
