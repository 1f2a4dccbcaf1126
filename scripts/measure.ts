/**
 * Runs a command and measures it: wall time and peak RSS (the VmHWM of
 * `/proc/<pid>/status`, sampled until it exits). Shared by the benchmark and
 * by the tests that check memory stays flat.
 *
 * @module
 */

/** What a measured command did. */
export interface Measurement {
  code: number;
  stderr: string;
  seconds: number;
  /** Peak resident set, KiB. */
  peakKib: number;
}

/**
 * Runs `argv` (stdin closed, stdout discarded or sent to the file `stdout`
 * by a shell that `exec`s the program, so the pid sampled is the program's).
 *
 * @param argv Program and arguments.
 * @param options Where stdout goes.
 * @returns Exit code, stderr, seconds and peak RSS.
 */
export async function measure(
  argv: string[],
  options: { stdout?: string } = {},
): Promise<Measurement> {
  const [program, ...args] = options.stdout === undefined ? argv : [
    "sh",
    "-c",
    `exec ${argv.map((a) => `'${a}'`).join(" ")} > '${options.stdout}'`,
  ];
  const started = performance.now();
  const child = new Deno.Command(program!, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let peakKib = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const match = /VmHWM:\s+(\d+) kB/.exec(status);
        if (match) peakKib = Math.max(peakKib, Number(match[1]));
      } catch {
        // The process has exited.
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const output = await child.output();
  const seconds = (performance.now() - started) / 1000;
  running = false;
  await sampler;
  return {
    code: output.code,
    stderr: new TextDecoder().decode(output.stderr),
    seconds,
    peakKib,
  };
}
