import assert from "node:assert/strict";
import { PERMISSION_FLAGS } from "../../scripts/permissions.ts";
import {
  buildCrasher,
  check,
  CORE_PATTERN,
  fileDigest,
  kernelSettings,
  listDir,
  ROOT,
  runMain,
  runTool,
  shortTempDir,
  waitForRecord,
} from "../_helpers.ts";

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
    `|${dir.path}/usr/bin/gzcoredump -c -p ${dir.path}/crash -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -- %e`,
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
  // A kernel before 5.3 split the expansions of %e, %E and %h on spaces:
  // only the name may remain, after '--', where nothing is an option.
  for (
    const [kernel, expected] of [
      ["4.19.0-26-amd64", "-D %d -- %e"],
      ["5.2.21", "-D %d -- %e"],
      ["5.3.0", "-D %d -H %h -E %E -- %e"],
      ["6.18.0", "-D %d -H %h -E %E -- %e"],
    ]
  ) {
    const old = await runTool("sh", [
      INSTALL,
      "--dry-run",
      "--launcher",
      "--kernel",
      kernel!,
    ]);
    assert.equal(old.code, 0, old.stderr);
    const written = /write '\/proc\/sys\/kernel\/core_pattern': (.*)$/m
      .exec(text(old.stdout))?.[1];
    assert.ok(
      written?.endsWith(` -t %t -r %c ${expected}`),
      `${kernel}: ${written}`,
    );
  }
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

/** A fake root with the two kernel settings install.sh reads and writes. */
async function fakeRoot(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await shortTempDir();
  await Deno.mkdir(`${dir.path}/proc/sys/kernel`, { recursive: true });
  await Deno.writeTextFile(
    `${dir.path}/proc/sys/kernel/core_pattern`,
    "core\n",
  );
  await Deno.writeTextFile(
    `${dir.path}/proc/sys/kernel/core_pipe_limit`,
    "0\n",
  );
  return dir;
}

async function snapshot(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      const info = await Deno.lstat(path);
      files[path.slice(root.length)] = info.isDirectory
        ? `dir ${(info.mode! & 0o7777).toString(8)}`
        : `${(info.mode! & 0o7777).toString(8)} ${await Deno.readTextFile(path)
          .catch(() => "?")}`;
      if (info.isDirectory) await walk(path);
    }
  };
  await walk(root);
  return files;
}

Deno.test("install.sh on a fake root installs, is idempotent, and --uninstall restores the previous settings", async () => {
  await using root = await fakeRoot();
  const binary = `${root.path}/../gzc-binary-${
    crypto.randomUUID().slice(0, 6)
  }`;
  await Deno.writeTextFile(binary, "#!/bin/sh\necho fake\n");
  try {
    const install = () =>
      runTool("sh", [INSTALL, "--root", root.path, "--binary", binary]);
    const first = await install();
    assert.equal(first.code, 0, first.stderr);
    const r = root.path;
    const pattern =
      "|/usr/local/bin/gzcoredump -c -p /var/crash -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -- %e";
    assert.equal(
      (await Deno.readTextFile(`${r}/proc/sys/kernel/core_pattern`)).trim(),
      pattern,
    );
    assert.equal(
      (await Deno.readTextFile(`${r}/proc/sys/kernel/core_pipe_limit`)).trim(),
      "16",
    );
    assert.equal(
      await Deno.readTextFile(`${r}/etc/sysctl.d/50-gzcoredump.conf`),
      `# Written by gzcoredump's install.sh; 'install.sh --uninstall' removes it.\nkernel.core_pattern = ${pattern}\nkernel.core_pipe_limit = 16\n`,
    );
    assert.equal(
      (await Deno.stat(`${r}/usr/local/bin/gzcoredump`)).mode! & 0o777,
      0o755,
    );
    assert.equal(
      await Deno.readTextFile(`${r}/usr/local/bin/gzcoredump`),
      await Deno.readTextFile(binary),
    );
    assert.equal((await Deno.stat(`${r}/var/crash`)).mode! & 0o777, 0o700);
    assert.equal(
      await Deno.readTextFile(`${r}/var/lib/gzcoredump/previous`),
      "core\n0\n",
    );

    // Again: nothing changes, and the saved settings are still the old ones.
    const before = await snapshot(r);
    const second = await install();
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(await snapshot(r), before);

    // A core in the store survives the uninstall.
    await Deno.writeTextFile(
      `${r}/var/crash/Core_20261126_000000_x.gz`,
      "core",
    );
    const removed = await runTool("sh", [INSTALL, "--root", r, "--uninstall"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(
      text(removed.stdout),
      /core_pattern is 'core' again; stored cores are kept/,
    );
    assert.equal(
      await Deno.readTextFile(`${r}/proc/sys/kernel/core_pattern`),
      "core\n",
    );
    assert.equal(
      await Deno.readTextFile(`${r}/proc/sys/kernel/core_pipe_limit`),
      "0\n",
    );
    for (
      const gone of [
        "/etc/sysctl.d/50-gzcoredump.conf",
        "/usr/local/bin/gzcoredump",
        "/var/lib/gzcoredump/previous",
      ]
    ) {
      assert.equal(
        await Deno.lstat(`${r}${gone}`).then(() => true, () => false),
        false,
        gone,
      );
    }
    assert.equal(
      await Deno.readTextFile(`${r}/var/crash/Core_20261126_000000_x.gz`),
      "core",
    );
    const twice = await runTool("sh", [INSTALL, "--root", r, "--uninstall"]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /nothing to uninstall: no saved settings/);
  } finally {
    await Deno.remove(binary);
  }
});

Deno.test("install.sh keeps a core_pipe_limit that is already set", async () => {
  await using root = await fakeRoot();
  await Deno.writeTextFile(
    `${root.path}/proc/sys/kernel/core_pipe_limit`,
    "4\n",
  );
  const result = await runTool("sh", [
    INSTALL,
    "--root",
    root.path,
    "--launcher",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    (await Deno.readTextFile(`${root.path}/proc/sys/kernel/core_pipe_limit`))
      .trim(),
    "4",
  );
  // The launcher runs the installed copy of the sources with this Deno.
  const launcher = await Deno.readTextFile(
    `${root.path}/usr/local/bin/gzcoredump`,
  );
  assert.match(
    launcher,
    new RegExp(
      `exec /\\S+/deno run ${
        PERMISSION_FLAGS.join(" ")
      } /usr/local/lib/gzcoredump/main\\.ts "\\$@"`,
    ),
  );
  assert.ok(
    (await Deno.stat(
      `${root.path}/usr/local/lib/gzcoredump/lib/capture/capture.ts`,
    ))
      .isFile,
  );
});

Deno.test("install.sh runs under busybox alone", async () => {
  await using root = await fakeRoot();
  await using bin = await shortTempDir();
  // Only busybox's applets on PATH: no coreutils, no bash.
  for (
    const applet of [
      "sh",
      "cat",
      "cp",
      "chmod",
      "mkdir",
      "mv",
      "rm",
      "sed",
      "wc",
      "id",
      "printf",
      "readlink",
      "dirname",
    ]
  ) {
    await Deno.symlink("/usr/bin/busybox", `${bin.path}/${applet}`);
  }
  await Deno.writeTextFile(`${bin.path}/fake-binary`, "binary");
  const result = await runTool(`${bin.path}/sh`, [
    INSTALL,
    "--root",
    root.path,
    "--binary",
    `${bin.path}/fake-binary`,
  ], {
    env: { PATH: bin.path },
    clearEnv: true,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    await Deno.readTextFile(`${root.path}/proc/sys/kernel/core_pattern`),
    /^\|\/usr\/local\/bin\/gzcoredump -c /,
  );
  const back = await runTool(`${bin.path}/sh`, [
    INSTALL,
    "--root",
    root.path,
    "--uninstall",
  ], {
    env: { PATH: bin.path },
    clearEnv: true,
  });
  assert.equal(back.code, 0, back.stderr);
  assert.equal(
    await Deno.readTextFile(`${root.path}/proc/sys/kernel/core_pattern`),
    "core\n",
  );
});

Deno.test("install.sh refuses to run without root, saying so", async () => {
  const result = await runTool("runuser", [
    "-u",
    "nobody",
    "--",
    "sh",
    INSTALL,
    "--launcher",
  ]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /^install\.sh: must run as root: it writes \/proc\/sys\/kernel\/core_pattern/,
  );
});

const SYSCTL_FILE = "/etc/sysctl.d/50-gzcoredump.conf";
const STATE_DIR = "/var/lib/gzcoredump";
/** What a real install keeps besides the kernel settings and the program. */
const INSTALL_STATE = [SYSCTL_FILE, `${STATE_DIR}/previous`];

/**
 * Moves the files of a real install ({@linkcode INSTALL_STATE}) aside;
 * disposing puts them back exactly (content, mode, times), removes any the test
 * left in their place, and removes `/var/lib/gzcoredump` when it did not
 * exist before. core_pattern and core_pipe_limit are
 * {@linkcode kernelSettings}'s.
 */
async function stashInstallState(): Promise<AsyncDisposable> {
  const saved = new Map<
    string,
    { data: Uint8Array; mode: number; atime: Date; mtime: Date }
  >();
  const stateDir = await Deno.lstat(STATE_DIR).catch(() => undefined);
  for (const path of INSTALL_STATE) {
    const info = await Deno.lstat(path).catch(() => undefined);
    if (info === undefined) continue;
    assert.ok(info.isFile, `${path} is not a regular file`);
    saved.set(path, {
      data: await Deno.readFile(path),
      mode: info.mode! & 0o7777,
      atime: info.atime ?? new Date(),
      mtime: info.mtime ?? new Date(),
    });
  }
  for (const path of saved.keys()) await Deno.remove(path);
  return {
    async [Symbol.asyncDispose]() {
      for (const path of INSTALL_STATE) {
        await Deno.remove(path).catch(() => {});
        const file = saved.get(path);
        if (file === undefined) continue;
        await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), {
          recursive: true,
        });
        await Deno.writeFile(path, file.data, { mode: file.mode });
        await Deno.chmod(path, file.mode);
        await Deno.utime(path, file.atime, file.mtime);
      }
      if (stateDir === undefined) {
        await Deno.remove(STATE_DIR).catch(() => {});
      } else {
        // install.sh --uninstall removed it when empty: as it was.
        await Deno.mkdir(STATE_DIR, { recursive: true });
        await Deno.chmod(STATE_DIR, stateDir.mode! & 0o7777);
        await Deno.utime(
          STATE_DIR,
          stateDir.atime ?? new Date(),
          stateDir.mtime ?? new Date(),
        );
      }
    },
  };
}

Deno.test({
  name:
    "e2e: install.sh --launcher, a real crash, list shows it, --uninstall restores everything",
  ignore: !E2E,
  async fn() {
    await using temp = await shortTempDir();
    const dir = temp.path;
    await using _restore = await kernelSettings();
    // gzcoredump may be installed for real: its files go aside (and come
    // back, whatever happens), so this install is a first one, and the
    // settings it saves and restores are the host's current ones.
    await using _stash = await stashInstallState();
    const savedPattern = await Deno.readTextFile(CORE_PATTERN);
    const savedLimit = await Deno.readTextFile(
      "/proc/sys/kernel/core_pipe_limit",
    );
    const sysctl = SYSCTL_FILE;
    for (const path of INSTALL_STATE) {
      assert.equal(
        await Deno.lstat(path).then(() => true, () => false),
        false,
        `${path} exists still`,
      );
    }
    const args = ["--prefix", `${dir}/usr`, "--store", `${dir}/crash`];
    let installed = false;
    try {
      const install = await runTool("sh", [INSTALL, "--launcher", ...args]);
      assert.equal(install.code, 0, install.stderr + text(install.stdout));
      installed = true;
      assert.equal(
        (await Deno.readTextFile(CORE_PATTERN)).trim(),
        `|${dir}/usr/bin/gzcoredump -c -p ${dir}/crash -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -- %e`,
      );
      assert.notEqual(
        (await Deno.readTextFile("/proc/sys/kernel/core_pipe_limit")).trim(),
        "0",
      );
      assert.match(
        await Deno.readTextFile(sysctl),
        /^kernel\.core_pattern = \|/m,
      );
      assert.equal((await Deno.stat(`${dir}/crash`)).mode! & 0o777, 0o700);
      // The launcher runs its own copy of Deno: an npm upgrade or removal
      // of the one on PATH costs no crash.
      const share = `${dir}/usr/lib/gzcoredump`;
      const launcher = await Deno.readTextFile(`${dir}/usr/bin/gzcoredump`);
      assert.match(launcher, new RegExp(`exec ${share}/deno run `));
      assert.equal(
        await fileDigest(`${share}/deno`),
        await fileDigest(Deno.execPath()),
      );

      const program = await buildCrasher(dir, "installed_crash");
      const crash = await runTool("sh", [
        "-c",
        `ulimit -c unlimited; exec ${program} abort`,
      ]);
      assert.equal(crash.code, 134);
      await waitForRecord(`${dir}/crash`);
      const list = await runTool(`${dir}/usr/bin/gzcoredump`, [
        "list",
        "-p",
        `${dir}/crash`,
      ]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(
        text(list.stdout),
        /\sSIGABRT\s+stored\s+\S*installed_crash\s.*\sCore_\d{8}_\d{6}_installed_crash\.gz$/m,
      );
      const json = JSON.parse(
        text((await runMain(["list", "-p", `${dir}/crash`, "--json"])).stdout),
      );
      assert.equal(json.length, 1);
      assert.equal(json[0].truncated, false);
    } finally {
      if (installed) {
        const uninstall = await runTool("sh", [
          INSTALL,
          "--uninstall",
          ...args,
        ]);
        assert.equal(uninstall.code, 0, uninstall.stderr);
      }
    }
    assert.equal(await Deno.readTextFile(CORE_PATTERN), savedPattern);
    assert.equal(
      await Deno.readTextFile("/proc/sys/kernel/core_pipe_limit"),
      savedLimit,
    );
    assert.equal(await Deno.lstat(sysctl).then(() => true, () => false), false);
    assert.equal(
      await Deno.lstat(`${dir}/usr/bin/gzcoredump`).then(
        () => true,
        () => false,
      ),
      false,
    );
    assert.equal(
      (await listDir(`${dir}/crash`)).length,
      2,
      "the stored core is kept",
    );
  },
});
