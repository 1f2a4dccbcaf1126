import assert from "node:assert/strict";
import { PERMISSION_FLAGS } from "../scripts/permissions.ts";
import {
  buildCrasher,
  check,
  CORE_PATTERN,
  kernelSettings,
  listDir,
  ROOT,
  runMain,
  runTool,
  shortTempDir,
  waitFor,
} from "./_helpers.ts";

const INSTALL = `${ROOT}install.sh`;
const E2E = Deno.env.get("GZCOREDUMP_E2E") === "1";
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("install.sh passes shellcheck as POSIX sh", async () => {
  await check("shellcheck", ["--shell=sh", INSTALL]);
});

Deno.test("install.sh --dry-run shows every action and a core_pattern under 128 bytes", async () => {
  await using dir = await shortTempDir();
  const result = await runTool("sh", [
    INSTALL,
    "--dry-run",
    "--launcher",
    "--prefix",
    `${dir.path}/usr`,
    "--store",
    `${dir.path}/crash`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const out = text(result.stdout);
  const pattern = /write '\/proc\/sys\/kernel\/core_pattern': (.*)$/m.exec(out)
    ?.[1];
  assert.ok(pattern, out);
  assert.ok(pattern.length < 128, pattern);
  assert.equal(
    pattern,
    `|${dir.path}/usr/bin/gzcoredump -c -p ${dir.path}/crash -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -a %e`,
  );
  // The launcher runs main.ts with exactly the compiled binary's permissions.
  assert.match(
    out,
    new RegExp(
      ` run ${
        PERMISSION_FLAGS.join(" ")
      } ${dir.path}/usr/lib/gzcoredump/main\\.ts "\\$@"`,
    ),
  );
  assert.match(out, /chmod 700 .*\/crash$/m);
  if (
    (await Deno.readTextFile("/proc/sys/kernel/core_pipe_limit")).trim() === "0"
  ) {
    assert.match(out, /^\+ write '\/proc\/sys\/kernel\/core_pipe_limit': 16$/m);
  }
  // A dry run changes nothing.
  assert.deepEqual(await listDir(dir.path), []);
});

Deno.test("install.sh refuses bad options, long patterns and a missing binary with one clear line", async () => {
  await using dir = await shortTempDir();
  const cases: [string[], RegExp][] = [
    [["--bogus"], /unknown option '--bogus'/],
    [
      ["--dry-run", "--launcher", "--prefix", "relative"],
      /--prefix must be an absolute path/,
    ],
    [
      ["--dry-run", "--launcher", "--store", `/${"x".repeat(60)}`],
      /core_pattern would be \d+ bytes, the kernel keeps only 127/,
    ],
    [
      ["--dry-run", "--binary", `${dir.path}/none`, "--prefix", dir.path],
      /--binary '.*none' is not a file/,
    ],
  ];
  const hasBinary = await Deno.stat(`${ROOT}bin/gzcoredump`).then(
    () => true,
    () => false,
  );
  if (!hasBinary) {
    cases.push([
      ["--dry-run", "--prefix", dir.path],
      /no binary at .*bin\/gzcoredump: run 'deno task build'/,
    ]);
  }
  for (const [args, message] of cases) {
    const result = await runTool("sh", [INSTALL, ...args]);
    assert.equal(result.code, 1, args.join(" "));
    assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, message);
  }
});

Deno.test({
  name:
    "e2e: install.sh --launcher installs a handler that stores a real crash",
  ignore: !E2E,
  async fn() {
    await using temp = await shortTempDir();
    const dir = temp.path;
    await using _restore = await kernelSettings();
    const install = await runTool("sh", [
      INSTALL,
      "--launcher",
      "--prefix",
      `${dir}/usr`,
      "--store",
      `${dir}/crash`,
    ]);
    assert.equal(install.code, 0, install.stderr + text(install.stdout));
    assert.equal(
      (await Deno.readTextFile(CORE_PATTERN)).trim(),
      `|${dir}/usr/bin/gzcoredump -c -p ${dir}/crash -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -a %e`,
    );
    assert.equal((await Deno.stat(`${dir}/crash`)).mode! & 0o777, 0o700);
    assert.notEqual(
      (await Deno.readTextFile("/proc/sys/kernel/core_pipe_limit")).trim(),
      "0",
    );
    const program = await buildCrasher(dir, "installed_crash");
    const crash = await runTool("sh", [
      "-c",
      `ulimit -c unlimited; exec ${program} abort`,
    ]);
    assert.equal(crash.code, 134);
    const names = await waitFor(async () => {
      const names = await listDir(`${dir}/crash`);
      return names.some((n) => n.endsWith(".json")) ? names : undefined;
    }, 60);
    const archive = names.find((n) =>
      /^Core_\d{8}_\d{6}_installed_crash\.gz$/.test(n)
    );
    assert.ok(archive, names.join(" "));
    const metadata = JSON.parse(
      await Deno.readTextFile(
        `${dir}/crash/${archive.replace(/\.gz$/, ".json")}`,
      ),
    );
    assert.equal(metadata.signal_name, "SIGABRT");
    assert.equal(metadata.exe, program);
    assert.equal(metadata.uid, 0);
    const restored = await runMain([
      "-d",
      "-f",
      `${dir}/crash/${archive}`,
      "-o",
      `${dir}/core`,
    ]);
    assert.equal(restored.code, 0, restored.stderr);
  },
});
