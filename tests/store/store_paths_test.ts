/**
 * The store's path, checked from `/` down as core handlers learnt to (the
 * CVE history of apport and systemd-coredump): whoever can rename a
 * directory on the way can swap the store for a link mid-capture. Also the
 * program named by `%E`, opened so that nothing swapped in can block it.
 */
import assert from "node:assert/strict";
import { openRegularFile } from "../../lib/fs/mod.ts";
import { runHook } from "../../lib/capture/mod.ts";
import { defaultStore, listAll, runTool, tempDir } from "../_helpers.ts";
import { random, sidecars } from "../_store.ts";

const NOBODY = 65534;

Deno.test("paths: a store under a directory another user owns is refused, even mode 0755", async () => {
  await using dir = await tempDir();
  await using fallback = await defaultStore();
  const parent = `${dir.path}/users`;
  await Deno.mkdir(`${parent}/store`, { recursive: true });
  await Deno.chmod(parent, 0o755);
  await Deno.chown(parent, NOBODY, NOBODY);
  const result = await fallback.runMain(
    ["-c", "-p", `${parent}/store`, "-a", fallback.marker],
    { stdin: random(1000) },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    /its parent '.*\/users': it is owned by uid 65534, expected root; storing in '\/var\/crash' instead/,
  );
  assert.deepEqual(await listAll(`${parent}/store`), []);
  assert.equal(
    (await fallback.files()).filter((n) => n.endsWith(".gz")).length,
    1,
  );
});

Deno.test("paths: a symlink on the way is followed only when root owns it", async () => {
  await using dir = await tempDir();
  await using fallback = await defaultStore();
  const real = `${dir.path}/real`;
  await Deno.mkdir(real, { mode: 0o755 });
  // Root's own link (like /var/run -> /run): fine.
  await Deno.symlink(real, `${dir.path}/rootlink`);
  const ok = await fallback.runMain(
    ["-c", "-p", `${dir.path}/rootlink/store`, "-a", fallback.marker],
    { stdin: random(1000) },
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /instead/);
  assert.equal(
    (await listAll(`${real}/store`)).filter((n) => n.endsWith(".gz")).length,
    1,
  );
  // A link another user owns could point anywhere tomorrow: refused.
  await Deno.symlink(real, `${dir.path}/userlink`);
  await runTool("chown", ["-h", `${NOBODY}:${NOBODY}`, `${dir.path}/userlink`]);
  const refused = await fallback.runMain(
    ["-c", "-p", `${dir.path}/userlink/store`, "-a", fallback.marker],
    { stdin: random(1000) },
  );
  assert.equal(refused.code, 0, refused.stderr);
  assert.match(
    refused.stderr,
    /its parent '.*\/userlink' is a symbolic link owned by uid 65534, expected root; storing in '\/var\/crash' instead/,
  );
});

Deno.test("paths: missing directories are created 0700 under checked ones; an unusable one falls back", async () => {
  await using dir = await tempDir();
  await using fallback = await defaultStore();
  const result = await fallback.runMain(
    ["-c", "-p", `${dir.path}/missing/store`, "-a", fallback.marker],
    { stdin: random(1000) },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /instead/);
  for (const path of [`${dir.path}/missing`, `${dir.path}/missing/store`]) {
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700, path);
  }
  // A file where a directory should be: the store cannot be made there.
  await Deno.writeTextFile(`${dir.path}/file`, "");
  const blocked = await fallback.runMain(
    ["-c", "-p", `${dir.path}/file/store`, "-a", fallback.marker],
    { stdin: random(1000) },
  );
  assert.equal(blocked.code, 0, blocked.stderr);
  assert.match(
    blocked.stderr,
    /its parent '.*\/file' is not a directory; storing in '\/var\/crash' instead/,
  );
  assert.equal(
    (await fallback.files()).filter((n) => n.endsWith(".gz")).length,
    1,
  );
});

Deno.test("paths: the program is opened without blocking, even when a FIFO is swapped in by name", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/prog`;
  const fifo = `${dir.path}/fifo`;
  await Deno.writeFile(`${dir.path}/regular`, random(4096));
  await runTool("mkfifo", [fifo]);
  // A plain FIFO, and a link to one with noFollow, are refused at once.
  await assert.rejects(openRegularFile(fifo), /it is not a regular file/);
  await Deno.symlink(`${dir.path}/regular`, `${dir.path}/link`);
  await assert.rejects(
    openRegularFile(`${dir.path}/link`, { noFollow: true }),
    /it is a symbolic link, expected a regular file/,
  );
  // A swapper renames a regular file and a FIFO over `prog` as fast as it can.
  const swapper = new Deno.Command("sh", {
    args: [
      "-c",
      `cd '${dir.path}' && while :; do ln -f regular t1 && mv -f t1 prog; mkfifo t2 2>/dev/null; mv -f t2 prog; done`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    // A group of its own: its ln and mv go with it, before the directory.
    detached: true,
  }).spawn();
  try {
    let regular = 0;
    let refused = 0;
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const attempt = openRegularFile(path).then((file) => {
        file.close();
        regular++;
      }, () => refused++);
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error("openRegularFile blocked")), 2000)
      );
      await Promise.race([attempt, timeout]);
    }
    assert.ok(
      regular > 0 && refused > 0,
      `${regular} opened, ${refused} refused`,
    );
  } finally {
    Deno.kill(-swapper.pid, "SIGKILL");
    await swapper.status;
    // Its last child may still be exiting: wait until no process is in it.
    for (let i = 0; i < 50; i++) {
      const left = await runTool("pgrep", ["-g", String(swapper.pid)]);
      if (left.code !== 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
});

Deno.test("hooks: a hook that runs too long is killed with everything it started, and says so", async () => {
  await using dir = await tempDir();
  const pidFile = `${dir.path}/hook.pid`;
  const script = `${dir.path}/hook.sh`;
  await Deno.writeTextFile(
    script,
    `#!/bin/sh\necho $$ > '${pidFile}'\n(sleep 30; sleep 30) &\nsleep 30\n`,
    { mode: 0o755 },
  );
  const started = performance.now();
  const problem = await runHook([script], [], { timeoutMs: 500 });
  assert.ok(performance.now() - started < 5000);
  assert.equal(
    problem,
    `hook '${script}' killed after 0.5 s, expected it to finish sooner`,
  );
  // The hook led a session of its own: nothing of it may be left.
  const session = (await Deno.readTextFile(pidFile)).trim();
  await new Promise((resolve) => setTimeout(resolve, 200));
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(
      () => "",
    );
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // State Z is a zombie waiting for its parent: already dead.
    if (fields[0] === "Z") continue;
    assert.notEqual(
      fields[3],
      session,
      `process ${entry.name} of the hook survived`,
    );
  }
  assert.equal(
    await runHook(["/bin/false"], []),
    "hook '/bin/false' exited with 1",
  );
});

Deno.test("hooks: a failing after hook is recorded in the sidecar", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const { runMain } = await import("../_helpers.ts");
  const result = await runMain(
    ["-c", "-p", store, "--after", "/bin/false", "-a", "hooked"],
    { stdin: random(1000) },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /hook '\/bin\/false' exited with 1/);
  const [meta] = await sidecars(store);
  assert.ok(
    (meta!.warnings as string[]).includes("hook '/bin/false' exited with 1"),
  );
});
