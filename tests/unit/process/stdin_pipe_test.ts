/**
 * The core's pipe on standard input, enlarged through libc: a real pipe
 * into a child process, its size read back with `F_GETPIPE_SZ`.
 */
import assert from "node:assert/strict";
import { readProcessFacts } from "../../../lib/process/mod.ts";
import { ROOT } from "../../_helpers.ts";

/** CAP_SYS_RESOURCE in this process's effective set (`CapEff`). */
async function maySizeAnyPipe(): Promise<boolean> {
  const hex = (await readProcessFacts(Deno.pid))?.status.CapEff ?? "0";
  return ((BigInt(`0x${hex}`) >> 24n) & 1n) === 1n;
}

/** What `enlargeStdinPipe(bytes)` returns in a child whose stdin is a pipe. */
async function enlargedIn(bytes: number): Promise<string> {
  const script = `
    import { enlargeStdinPipe } from "${ROOT}lib/process/stdin_pipe.ts";
    console.log(String(enlargeStdinPipe(${bytes})));
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdin.close();
  const { stdout, stderr, success } = await child.output();
  assert.ok(success, new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout).trim();
}

Deno.test("enlargeStdinPipe() gives the size asked to a process with CAP_SYS_RESOURCE, else pipe-max-size", async () => {
  const most = Number(
    (await Deno.readTextFile("/proc/sys/fs/pipe-max-size")).trim(),
  );
  const wanted = 4 * most;
  // The kernel's helper has every capability; a container's root may not.
  const expected = await maySizeAnyPipe() ? wanted : most;
  assert.equal(await enlargedIn(wanted), String(expected));
  // Within the limit, anyone gets what it asks.
  assert.equal(await enlargedIn(most / 4), String(most / 4));
});
