import assert from "node:assert/strict";
import { constants } from "node:os";
import {
  exePath,
  readClocks,
  readProcessFacts,
  selfIdentity,
  signalName,
  startTicks,
} from "../../../lib/process/mod.ts";
import { tempDir } from "../_temp.ts";

Deno.test("signalName() names signals 1 to 31 as node:os numbers them on Linux", () => {
  const byNumber = new Map<number, string[]>();
  for (const [name, number] of Object.entries(constants.signals)) {
    byNumber.set(number, [...byNumber.get(number) ?? [], name]);
  }
  for (let signal = 1; signal <= 31; signal++) {
    const names = byNumber.get(signal) ?? [];
    assert.ok(
      names.includes(signalName(signal)),
      `${signal}: ${signalName(signal)} is one of ${names}`,
    );
  }
  // Real-time signals from glibc's SIGRTMIN (34) to 64.
  assert.equal(signalName(34), "SIGRTMIN+0");
  assert.equal(signalName(64), "SIGRTMIN+30");
  for (const other of [0, 32, 33, 65, -1, 1000]) {
    assert.equal(signalName(other), String(other));
  }
});

Deno.test("exePath() turns %E's ! back into /", () => {
  assert.equal(exePath({ exe: "!usr!bin!app" }), "/usr/bin/app");
  assert.equal(exePath({ exe: "!opt!my app!bin!x" }), "/opt/my app/bin/x");
  assert.equal(exePath({ exe: "" }), "");
  assert.equal(exePath({ pid: 5 }), undefined);
});

Deno.test("readProcessFacts() reads a /proc/<pid> laid out in a directory, hostile names included", async () => {
  await using dir = await tempDir();
  const proc = dir.path;
  await Deno.mkdir(`${proc}/4242`);
  const comm = "evil) S 1 (x";
  // Field 22 (starttime) is the 20th after the command name.
  const after = [
    "S",
    ...Array.from({ length: 18 }, (_, i) => String(i)),
    "12345",
  ];
  await Deno.writeTextFile(
    `${proc}/4242/stat`,
    `4242 (${comm}) ${after.join(" ")} 0 0\n`,
  );
  await Deno.writeTextFile(
    `${proc}/stat`,
    "cpu 1 2 3\nbtime 1764000000\nprocesses 9\n",
  );
  await Deno.writeTextFile(
    `${proc}/4242/cmdline`,
    "/usr/bin/app\0--flag\0with space\0",
  );
  await Deno.writeTextFile(
    `${proc}/4242/cgroup`,
    "0::/user.slice/app.scope\n\n",
  );
  await Deno.writeTextFile(
    `${proc}/4242/status`,
    [
      "Name:\tapp",
      "Uid:\t1000\t1000\t1000\t1000",
      "VmRSS:\t   1024 kB",
      "SigQ:\t0/1000",
      "NotAField",
      ":\tnameless",
      "Threads:\t3",
    ].join("\n"),
  );
  const facts = await readProcessFacts(4242, { proc });
  assert.ok(facts !== undefined);
  assert.equal(facts.comm, comm);
  assert.deepEqual(
    facts.startTime,
    new Date((1_764_000_000 + 12345 / 100) * 1000),
  );
  assert.deepEqual(facts.cmdline, ["/usr/bin/app", "--flag", "with space"]);
  assert.equal(facts.cgroup, "0::/user.slice/app.scope");
  assert.deepEqual(facts.status, {
    Name: "app",
    Uid: "1000 1000 1000 1000",
    VmRSS: "1024 kB",
    Threads: "3",
  });
  // A pid with no directory is gone; a stat alone gives what it can.
  assert.equal(await readProcessFacts(4243, { proc }), undefined);
  await Deno.mkdir(`${proc}/7`);
  await Deno.writeTextFile(`${proc}/7/stat`, "garbage");
  assert.deepEqual(await readProcessFacts(7, { proc }), { status: {} });
});

Deno.test("readProcessFacts() reads at most 64 KiB of a file", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/1`);
  await Deno.writeTextFile(`${dir.path}/1/stat`, "1 (x) S");
  await Deno.writeTextFile(`${dir.path}/1/cmdline`, "a".repeat(200_000));
  const facts = await readProcessFacts(1, { proc: dir.path });
  assert.equal(facts?.cmdline?.[0]?.length, 64 << 10);
});

Deno.test("this process's identity and clocks agree with /proc", async () => {
  const me = selfIdentity();
  assert.equal(me.pid, Deno.pid);
  assert.equal(startTicks("self"), me.startTicks);
  assert.equal(startTicks(Deno.pid), me.startTicks);
  assert.equal(startTicks(0), undefined);
  const clocks = readClocks();
  assert.equal(clocks.bootId, me.bootId);
  assert.match(clocks.bootId, /^[0-9a-f-]{36}$/);
  // Started after boot, and no later than now.
  assert.ok(me.startTicks * 10 <= clocks.uptimeMs + 10);
  const facts = await readProcessFacts(Deno.pid);
  assert.equal(facts?.status.Tgid, String(Deno.pid));
  assert.ok(facts?.startTime !== undefined);
  assert.ok(facts.startTime.getTime() <= Date.now() + 1000);
});
