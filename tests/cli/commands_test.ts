/**
 * The store commands at their edges, on real processes and files: signals
 * to `debug` (Ctrl-C, SIGTERM) with a real waiting debugger, a missing
 * store, a reader that closes stdout early (`| head -c 1`), and the ratio
 * of empty and unstored cores in `list`.
 */
import assert from "node:assert/strict";
import {
  check,
  crashCore,
  listAll,
  mainCommand,
  runMain,
  runTool,
  tempDir,
  waitFor,
} from "../_helpers.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Stores `stdin` (bytes or a file) under the name `name` in `store`. */
async function store(
  directory: string,
  name: string,
  stdin: Uint8Array | { path: string },
  extra: string[] = [],
): Promise<void> {
  const result = await runMain(["-c", "-p", directory, ...extra, "-a", name], {
    stdin,
  });
  assert.equal(result.code, 0, result.stderr);
}

/** The unpacking directories `debug` made under `tmp`. */
async function debugDirs(tmp: string): Promise<string[]> {
  return (await listAll(tmp)).filter((n) => n.startsWith("gzcoredump-debug-"));
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/**
 * A debugger that waits, as gdb does at its prompt: it writes its pid and
 * arguments to `marker`, then each SIGINT it gets as a line "INT"; SIGTERM
 * ends it.
 */
async function waitingDebugger(dir: string): Promise<
  { script: string; marker: string }
> {
  const python = (await check("python3", [
    "-c",
    "import sys; print(sys.executable)",
  ])).trim();
  const script = `${dir}/debugger.py`;
  const marker = `${dir}/debugger.log`;
  await Deno.writeTextFile(
    script,
    `#!${python}
import json, os, signal, sys, time
def on_int(number, frame):
    with open(${JSON.stringify(marker)}, "a") as f:
        f.write("INT\\n")
signal.signal(signal.SIGINT, on_int)
with open(${JSON.stringify(marker)}, "w") as f:
    f.write(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:]}) + "\\n")
for _ in range(600):
    time.sleep(0.1)
`,
  );
  await Deno.chmod(script, 0o755);
  return { script, marker };
}

/**
 * `gzcoredump debug ID` as its own session (no terminal: a SIGINT to it is
 * passed on to the debugger), with the temporary directory under `tmp`.
 */
function spawnDebug(
  storeDir: string,
  id: string,
  debuggerCommand: string,
  tmp: string,
): Deno.ChildProcess {
  return new Deno.Command("setsid", {
    args: [
      ...mainCommand(),
      "debug",
      id,
      "-p",
      storeDir,
      "--debugger",
      debuggerCommand,
    ],
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Ends `child` and a debugger left behind (its pid in `marker`), so that a
 * failed test does not wait for them.
 */
async function stopAll(child: Deno.ChildProcess, marker: string) {
  const started = await Deno.readTextFile(marker).catch(() => "");
  const pid = started === ""
    ? undefined
    : JSON.parse(started.split("\n")[0]!).pid;
  for (const target of [child.pid, pid]) {
    if (typeof target === "number" && alive(target)) {
      try {
        Deno.kill(target, "SIGKILL");
      } catch {
        // Ended meanwhile.
      }
    }
  }
  await child.output().catch(() => {});
}

/** The child's exit code within `seconds`, or undefined while it runs. */
async function exitWithin(
  child: Deno.ChildProcess,
  seconds: number,
): Promise<number | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    child.status.then((s) => s.code),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), seconds * 1000);
    }),
  ]);
  clearTimeout(timer);
  return result;
}

Deno.test("debug: SIGINT goes to the running debugger, SIGTERM ends it, removes the unpacked core and exits 143", async () => {
  await using dir = await tempDir();
  const storeDir = `${dir.path}/store`;
  await store(storeDir, "crasher", { path: await crashCore(dir.path) });
  const tmp = `${dir.path}/tmp`;
  await Deno.mkdir(tmp);
  const { script, marker } = await waitingDebugger(dir.path);
  const child = spawnDebug(storeDir, "crasher", script, tmp);
  try {
    const started = await waitFor(
      () => Deno.readTextFile(marker).then((t) => t, () => undefined),
      30,
    );
    const { pid, argv } = JSON.parse(started.split("\n")[0]!) as {
      pid: number;
      argv: string[];
    };
    const core = argv.at(-1)!;
    assert.match(core, new RegExp(`^${tmp}/gzcoredump-debug-[^/]+/core$`));
    assert.equal(
      (await Deno.stat(core)).mode! & 0o777,
      0o600,
      "the unpacked core is private",
    );
    const [unpacked] = await debugDirs(tmp);
    assert.equal((await Deno.stat(`${tmp}/${unpacked}`)).mode! & 0o777, 0o700);

    // Ctrl-C is the debugger's: gzcoredump passes it on and stays.
    Deno.kill(child.pid, "SIGINT");
    await waitFor(
      async () =>
        (await Deno.readTextFile(marker)).includes("INT\n") || undefined,
      10,
    );
    assert.equal(await exitWithin(child, 0.5), undefined, "gzcoredump runs on");
    assert.ok(alive(pid), "the debugger runs on");
    assert.ok(await Deno.stat(core).then(() => true, () => false));

    // SIGTERM ends the debugger and the command, and cleans up.
    Deno.kill(child.pid, "SIGTERM");
    const output = await child.output();
    assert.equal(output.code, 143, text(output.stderr));
    assert.equal(text(output.stderr), "");
    assert.deepEqual(await debugDirs(tmp), [], "the unpacked core is gone");
    await waitFor(() => Promise.resolve(alive(pid) ? undefined : true), 10);
  } finally {
    await stopAll(child, marker);
  }
});

Deno.test("debug: SIGINT or SIGTERM while the core is unpacked removes it, exits 130 or 143, and starts no debugger", async () => {
  await using dir = await tempDir();
  const storeDir = `${dir.path}/store`;
  await Deno.mkdir(storeDir, { mode: 0o700 });
  // 64 MiB of text that inflates at ~150 MB/s: the unpacking takes a while.
  const archive = `${storeDir}/Core_20260101_000000_big.gz`;
  await check("python3", [
    "-c",
    `import base64, gzip, os, sys
open(sys.argv[1], "wb").write(gzip.compress(base64.b64encode(os.urandom(48 << 20)), compresslevel=1))`,
    archive,
  ]);
  const { script, marker } = await waitingDebugger(dir.path);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const tmp = `${dir.path}/tmp-${signal}`;
    await Deno.mkdir(tmp);
    const child = spawnDebug(storeDir, "Core_20260101_000000_big", script, tmp);
    try {
      // The partial core is open: gzcoredump is unpacking.
      const unpacking = new RegExp(
        `^${tmp}/gzcoredump-debug-[^/]+/\\.core\\.tmp-`,
      );
      await waitFor(async () => {
        for await (const fd of Deno.readDir(`/proc/${child.pid}/fd`)) {
          const target = await Deno.readLink(`/proc/${child.pid}/fd/${fd.name}`)
            .catch(() => "");
          if (unpacking.test(target)) return true;
        }
        return undefined;
      }, 30);
      Deno.kill(child.pid, signal);
      const output = await child.output();
      assert.equal(output.code, code, `${signal}: ${text(output.stderr)}`);
      assert.equal(text(output.stderr), "");
      assert.deepEqual(await debugDirs(tmp), [], `${signal}: nothing left`);
      assert.equal(
        await Deno.stat(marker).then(() => true, () => false),
        false,
        `${signal}: no debugger was started`,
      );
    } finally {
      await stopAll(child, marker);
    }
  }
  // Undisturbed, the same core reaches the debugger whole.
  const done = await runMain([
    "debug",
    "Core_20260101_000000_big",
    "-p",
    storeDir,
    "--debugger",
    "wc -c",
  ], { env: { TMPDIR: `${dir.path}/tmp-SIGINT` } });
  assert.equal(done.code, 0, done.stderr);
  assert.match(text(done.stdout), new RegExp(`^${64 << 20} .*/core\n$`));
  assert.deepEqual(await debugDirs(`${dir.path}/tmp-SIGINT`), []);
});

Deno.test("list, info, extract and debug name a missing store in one line, exit 1", async () => {
  await using dir = await tempDir();
  const missing = `${dir.path}/missing`;
  const expected =
    `gzcoredump: Cannot list the store '${missing}': no such file or directory, expected the directory cores are stored in (-p)\n`;
  for (
    const args of [
      ["list", "-p", missing],
      ["list", "prog", "-p", missing, "--json"],
      ["info", "prog", "-p", missing],
      ["extract", "prog", "-p", missing, "-o", `${dir.path}/core`],
      ["debug", "prog", "-p", missing, "--debugger", "true"],
    ]
  ) {
    const result = await runMain(args);
    assert.equal(result.code, 1, args.join(" "));
    assert.equal(result.stderr, expected, args.join(" "));
    assert.equal(result.stdout.length, 0);
  }
  const file = `${dir.path}/file`;
  await Deno.writeTextFile(file, "");
  const notDirectory = await runMain(["list", "-p", file]);
  assert.equal(notDirectory.code, 1);
  assert.equal(
    notDirectory.stderr,
    `gzcoredump: Cannot list the store '${file}': not a directory, expected the directory cores are stored in (-p)\n`,
  );
  assert.deepEqual(await listAll(dir.path), ["file"]);
});

Deno.test("a reader that closes stdout early (| head -c 1) ends -d, -c and extract quietly, exit 0", async () => {
  await using dir = await tempDir();
  // 8 MiB, far more than a pipe holds: the writer meets the closed pipe.
  const data = new Uint8Array(8 << 20);
  for (let at = 0; at < data.length; at += 65536) {
    crypto.getRandomValues(data.subarray(at, at + 65536));
  }
  const plain = `${dir.path}/data`;
  await Deno.writeFile(plain, data);
  assert.equal(
    (await runMain(["-c", "-f", plain, "-o", `${plain}.gz`])).code,
    0,
  );
  const storeDir = `${dir.path}/store`;
  await store(storeDir, "big", data);
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const main = mainCommand().map(quote).join(" ");
  const cases: [string[], string][] = [
    [["-d", "-f", `${plain}.gz`, "-o", "-"], ""],
    [["-d", "-f", "-", "-o", "-"], ` < ${quote(`${plain}.gz`)}`],
    [["-c", "-f", plain, "-o", "-"], ""],
    [["-c", "-f", "-", "-o", "-"], ` < ${quote(plain)}`],
    [["extract", "big", "-p", storeDir, "-o", "-"], ""],
  ];
  for (const [args, stdin] of cases) {
    const status = `${dir.path}/status`;
    const result = await runTool("sh", [
      "-c",
      `{ ${main} ${args.map(quote).join(" ")}${stdin}; echo $? > ${
        quote(status)
      }; } | head -c 1`,
    ], { env: { NO_COLOR: "1" } });
    assert.equal(result.stderr, "", args.join(" "));
    assert.equal(result.code, 0);
    assert.equal(result.stdout.length, 1);
    assert.equal((await Deno.readTextFile(status)).trim(), "0", args.join(" "));
  }
});

Deno.test("list: an empty or unstored core has no ratio; a sidecar with archive null is metadata only", async () => {
  await using dir = await tempDir();
  const storeDir = `${dir.path}/store`;
  // An empty core, stored or kept as metadata only: either way no ratio.
  await store(storeDir, "empty", new Uint8Array());
  await store(storeDir, "tiny", new Uint8Array([1]));
  // RLIMIT_CORE 0: the sidecar says "archive": null and why.
  await store(storeDir, "limited", new TextEncoder().encode("core"), [
    "-r",
    "0",
  ]);
  // A stored 0-byte archive, with the sidecar an earlier capture wrote.
  const emptyFile = `${dir.path}/nothing`;
  await Deno.writeFile(emptyFile, new Uint8Array());
  const zero = "Core_20260101_000000_zero";
  const packed = await runMain([
    "-c",
    "-f",
    emptyFile,
    "-o",
    `${storeDir}/${zero}.gz`,
  ]);
  assert.equal(packed.code, 0, packed.stderr);
  await Deno.writeTextFile(
    `${storeDir}/${zero}.json`,
    JSON.stringify({
      tool: "gzcoredump",
      archive: `${zero}.gz`,
      time: "2026-01-01T00:00:00.000Z",
      comm: "zero",
      core_size: 0,
      compressed_size: (await Deno.stat(`${storeDir}/${zero}.gz`)).size,
      truncated: false,
      reason: null,
    }),
  );
  const names = await listAll(storeDir);
  const limited = names.find((n) => n.endsWith("_limited.json"))!;
  const sidecar = JSON.parse(await Deno.readTextFile(`${storeDir}/${limited}`));
  assert.equal(sidecar.archive, null);
  assert.match(sidecar.reason, /RLIMIT_CORE/);

  const rows = JSON.parse(
    text((await runMain(["list", "-p", storeDir, "--json"])).stdout),
  ) as {
    program: string;
    size: number;
    stored: number | null;
    ratio: number | null;
    reason: string | null;
  }[];
  const row = (program: string) => rows.find((r) => r.program === program)!;
  assert.equal(row("empty").size, 0);
  assert.equal(row("empty").ratio, null);
  assert.equal(row("zero").size, 0);
  assert.ok(row("zero").stored! > 0);
  assert.equal(row("zero").ratio, null);
  assert.ok(row("tiny").ratio! > 0, "a tiny core's ratio is not 0");
  assert.equal(row("limited").stored, null);
  assert.equal(row("limited").ratio, null);
  assert.match(row("limited").reason!, /RLIMIT_CORE/);

  // A capture under way (only its hidden temporary file) is not listed.
  await Deno.writeFile(
    `${storeDir}/.Core_20260101_000000_busy.gz.tmp-0123abcd`,
    new Uint8Array(10),
    { mode: 0o600 },
  );
  const table = text((await runMain(["list", "-p", storeDir])).stdout);
  assert.equal(table.trim().split("\n").length, 5, table);
  assert.doesNotMatch(table, /busy/);
  // COREFILE says what was kept and why not; then EXE, SIZE, RATIO.
  assert.match(table, /\smetadata only \(empty core\)\s+empty\s+0 B\s+-\s+-\s/);
  assert.match(
    table,
    /\sstored\s+zero\s+0 B\s+-\s+-\s+Core_20260101_000000_zero\.gz$/m,
  );
  assert.doesNotMatch(table, /\s0x\s/);
  assert.match(table, /\stiny\s+1 B\s+0\.\dx\s/);
  assert.match(
    table,
    /\smetadata only \(RLIMIT_CORE 0\)\s+limited\s+\S+ B\s+-\s+-\s+Core_\d{8}_\d{6}_limited\.json$/m,
  );

  // A sidecar that says no archive was kept is believed, even next to a
  // stray archive file of the same name.
  await Deno.copyFile(
    `${storeDir}/${zero}.gz`,
    `${storeDir}/${limited.replace(/\.json$/, "")}.gz`,
  );
  const again = JSON.parse(
    text((await runMain(["list", "limited", "-p", storeDir, "--json"])).stdout),
  );
  assert.equal(again.length, 1);
  assert.equal(again[0].stored, null);
  assert.equal(again[0].ratio, null);
});
