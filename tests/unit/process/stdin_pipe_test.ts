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

/** A child running `script`, its stdin a pipe from this process. */
function evalChild(script: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** What `enlargeStdinPipe(bytes)` returns in a child whose stdin is a pipe. */
async function enlargedIn(bytes: number): Promise<string> {
  const script = `
    import { enlargeStdinPipe } from "${ROOT}lib/process/stdin_pipe.ts";
    console.log(String(enlargeStdinPipe(${bytes})));
  `;
  const child = evalChild(script);
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

/** The `flags:` of a descriptor in `/proc/self/fdinfo`, as a number. */
const FLAGS_OF = `
  const flagsOf = (fd) => parseInt(
    /^flags:\\s*(\\d+)/m.exec(Deno.readTextFileSync("/proc/self/fdinfo/" + fd))![1]!,
    8,
  );`;

Deno.test("stdinReadable() takes every byte of a pipe that runs dry between bursts; the pipe is non-blocking only until it is let go", async () => {
  const script = `
    import { releaseStdin, stdinPressure, stdinReadable } from "${ROOT}lib/process/stdin_pipe.ts";
    ${FLAGS_OF}
    // A second descriptor on the pipe's open file, as a script that reads
    // on after the capture would hold: it sees the flags the capture leaves.
    const libc = Deno.dlopen("libc.so.6", {
      dup: { parameters: ["i32"], result: "i32" },
    });
    const kept = libc.symbols.dup(0);
    const before = flagsOf(0);
    let during = 0;
    const parts = [];
    {
      using pressure = stdinPressure();
      during = flagsOf(0);
      const reader = stdinReadable(pressure).getReader({ mode: "byob" });
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(1 << 16));
        if (value?.length) parts.push(value.slice());
        if (done) break;
      }
      // The capture's order: the flags given back, then the pipe let go.
      pressure.restore();
      releaseStdin();
    }
    const after = flagsOf(kept);
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) { all.set(part, at); at += part.length; }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
    console.log(JSON.stringify({
      before, during, after, length: all.length,
      sha: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
    }));
  `;
  const child = evalChild(script);
  // Three bursts, each followed by a pause in which the reader drains the
  // pipe and finds it empty: those reads wait, and the last one meets the
  // end of the input while it waits.
  const sent: Uint8Array[] = [];
  const writer = child.stdin.getWriter();
  for (let burst = 0; burst < 3; burst++) {
    const bytes = new Uint8Array(3 << 20);
    for (let i = 0; i < bytes.length; i += 65536) {
      crypto.getRandomValues(bytes.subarray(i, i + 65536));
    }
    sent.push(bytes);
    await writer.write(bytes);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  await writer.close();
  const { stdout, stderr, success } = await child.output();
  assert.ok(success, new TextDecoder().decode(stderr));
  const got = JSON.parse(new TextDecoder().decode(stdout));
  const all = new Uint8Array(9 << 20);
  sent.forEach((bytes, i) => all.set(bytes, i * bytes.length));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  assert.equal(got.length, all.length);
  assert.equal(
    got.sha,
    Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
  );
  const O_NONBLOCK = 0o4000;
  assert.equal(got.before & O_NONBLOCK, 0);
  assert.equal(got.during & O_NONBLOCK, O_NONBLOCK);
  assert.equal(got.after & O_NONBLOCK, 0);
});
