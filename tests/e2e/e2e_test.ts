/**
 * End to end through the real kernel: core_pattern pipes a real crash into
 * gzcoredump. Runs only with GZCOREDUMP_E2E=1 (it changes kernel settings
 * for the whole machine, and restores them in `finally`).
 */
import assert from "node:assert/strict";
import { stampUuid } from "../../lib/cli/mod.ts";
import { readUuid } from "../../lib/cli/mod.ts";
import { euUnstripModules, readelfBuildId } from "../_readelf.ts";
import {
  buildCrasher,
  check,
  CORE_PATTERN,
  CORE_PIPE_LIMIT,
  elfType,
  kernelSettings,
  listDir,
  mainCommand,
  ROOT,
  runMain,
  runTool,
  shortTempDir,
  waitFor,
  waitForRecord,
} from "../_helpers.ts";

const E2E = Deno.env.get("GZCOREDUMP_E2E") === "1";

/** The compiled binary when `deno task build` made one, else a launcher. */
async function helperFor(dir: string): Promise<string> {
  const binary = `${ROOT}bin/gzcoredump`;
  if (await Deno.stat(binary).then((i) => i.isFile, () => false)) return binary;
  const launcher = `${dir}/gzcoredump`;
  const quoted = mainCommand().map((arg) => `'${arg}'`).join(" ");
  await Deno.writeTextFile(launcher, `#!/bin/sh\nexec ${quoted} "$@"\n`, {
    mode: 0o755,
  });
  return launcher;
}

Deno.test({
  name:
    "e2e: the kernel pipes a real crash through core_pattern into a 0600 archive of an ELF core",
  ignore: !E2E,
  async fn() {
    // Short paths: core_pattern holds at most 127 bytes.
    await using temp = await shortTempDir();
    const dir = temp.path;
    await using _restore = await kernelSettings();
    const helper = await helperFor(dir);
    const store = `${dir}/s`;
    const program = await buildCrasher(dir, "e2e_crasher");
    await stampUuid(program, { uuid: "e2e-uuid" });
    const pattern =
      `|${helper} -c -p ${store} -P %P -u %u -s %s -t %t -D %d -E %E -a %e`;
    assert.ok(pattern.length < 128, `core_pattern too long: ${pattern}`);
    await Deno.writeTextFile(CORE_PATTERN, pattern);
    await Deno.writeTextFile(CORE_PIPE_LIMIT, "4");

    const crash = await runTool("sh", [
      "-c",
      `ulimit -c unlimited; ${program} & pid=$!; echo $pid; wait $pid`,
    ]);
    const pid = Number(new TextDecoder().decode(crash.stdout).trim());
    assert.ok(pid > 0);
    assert.equal(crash.code, 139, crash.stderr);

    const json = await waitForRecord(store);
    const names = await listDir(store);
    const archive = names.find((n) => n.endsWith(".gz"));
    assert.ok(archive, names.join(" "));
    assert.match(archive, /^Core_\d{8}_\d{6}_e2e_crasher\.gz$/);
    assert.equal(
      (await Deno.stat(`${store}/${archive}`)).mode! & 0o777,
      0o600,
    );
    assert.equal((await Deno.stat(store)).mode! & 0o777, 0o700);

    const restored = `${dir}/core`;
    const result = await runMain([
      "-d",
      "-f",
      `${store}/${archive}`,
      "-o",
      restored,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(elfType(await Deno.readFile(restored)), 4); // ET_CORE
    const metadata = JSON.parse(await Deno.readTextFile(`${store}/${json}`));
    assert.equal(metadata.pid, pid);
    assert.equal(metadata.signal, 11);
    assert.equal(metadata.signal_name, "SIGSEGV");
    assert.equal(metadata.exe, program);
    assert.equal(metadata.core_size, (await Deno.stat(restored)).size);
    assert.deepEqual(metadata.warnings, []);
    // The program's .uuid, byte for byte, through /proc/<pid>/exe.
    const txt = archive.replace(/\.gz$/, ".txt");
    assert.deepEqual(
      await Deno.readFile(`${store}/${txt}`),
      await readUuid(program),
    );
    assert.equal(metadata.uuid_file, txt);
    assert.equal(metadata.program_source, `/proc/${pid}/exe`);
    // Build-ids and modules as eu-unstrip reads them from the same core.
    const golden = await euUnstripModules(restored);
    assert.deepEqual(
      (metadata.modules as { start: string; build_id: string }[])
        .map((m) => [BigInt(m.start), m.build_id]).sort(),
      golden.map((m) => [m.start, m.buildId]).sort(),
    );
    assert.equal(metadata.build_id, await readelfBuildId(program));
    assert.equal(metadata.modules[0].path, program);
    assert.equal(metadata.truncated, false);
    // The stack trace, made from the pipe with the process still there,
    // is eu-stack's on the same core; it crashed in main.
    assert.equal(metadata.crash_thread, pid);
    const [thread] = metadata.backtrace as {
      tid: number;
      name: string | null;
      crashed: boolean;
      frames: { pc: string; function: string | null; trust: string }[];
    }[];
    assert.equal(thread!.crashed, true);
    // Its name, read while the process was still there.
    assert.equal(thread!.name, "e2e_crasher");
    assert.equal(thread!.frames[0]!.function, "main");
    assert.equal(thread!.frames[0]!.trust, "context");
    const stack = await check("eu-stack", ["--core", restored, "-e", program]);
    const euStack = [...stack.matchAll(/^#\d+\s+0x([0-9a-f]+)/gm)].map((m) =>
      BigInt(`0x${m[1]}`)
    );
    assert.deepEqual(
      thread!.frames.map((f) => BigInt(f.pc)).slice(0, euStack.length),
      euStack,
    );
    assert.equal(metadata.expected_size, metadata.core_size);
    assert.equal(metadata.threads, 1);

    // The helper logs after it has published the archive, and names the
    // frame it crashed in.
    const logged = new RegExp(
      `gzcoredump\\[\\d+\\]: saved core of pid ${pid} \\(\\d+ bytes\\) to ${store}/${archive}; SIGSEGV in main \\(e2e_crasher \\+ 0x[0-9a-f]+\\)`,
    );
    await waitFor(async () => {
      const dmesg = await runTool("dmesg", []);
      return logged.test(new TextDecoder().decode(dmesg.stdout)) || undefined;
    }, 30);
  },
});

Deno.test({
  name: "e2e: a program deleted before it crashed still has its .uuid copied",
  ignore: !E2E,
  async fn() {
    await using temp = await shortTempDir();
    const dir = temp.path;
    await using _restore = await kernelSettings();
    const helper = await helperFor(dir);
    const store = `${dir}/s`;
    const program = await buildCrasher(dir, "gone");
    await stampUuid(program, { uuid: "deleted-program" });
    await Deno.writeTextFile(
      CORE_PATTERN,
      `|${helper} -c -p ${store} -P %P -E %E -a %e`,
    );
    await Deno.writeTextFile(CORE_PIPE_LIMIT, "4");
    const crash = await runTool("sh", [
      "-c",
      `ulimit -c unlimited; exec ${program} unlink`,
    ]);
    assert.equal(crash.code, 139);
    assert.equal(await Deno.stat(program).then(() => true, () => false), false);
    const json = await waitForRecord(store);
    const metadata = JSON.parse(await Deno.readTextFile(`${store}/${json}`));
    assert.equal(metadata.uuid, "deleted-program\n");
    // The kernel's own words for an executable that is gone.
    assert.equal(metadata.exe, `${program} (deleted)`);
    assert.equal(metadata.program_source, `/proc/${metadata.pid}/exe`);
    // Its frames are named: the deleted file was read through
    // /proc/<pid>/map_files/ while the process was there.
    const top = metadata.backtrace[0].frames[0];
    assert.equal(top.function, "main");
    assert.equal(top.module, `${program} (deleted)`);
    const txt = json.replace(/\.json$/, ".txt");
    assert.equal(
      await Deno.readTextFile(`${store}/${txt}`),
      "deleted-program\n",
    );
  },
});
