/**
 * Golden tables from binutils' readelf and elfutils' eu-readelf, parsed
 * from their text output, to check our reader against.
 *
 * @module
 */

import { check } from "./_helpers.ts";

/** What `readelf -W -h -l -S` says. */
export interface ReadelfTables {
  header: {
    class: number;
    littleEndian: boolean;
    entry: bigint;
    phoff: number;
    shoff: number;
    phentsize: number;
    phnum: number;
    shentsize: number;
    shnum: number;
    shstrndx: number;
  };
  programs: {
    type: string;
    offset: number;
    vaddr: bigint;
    filesz: number;
    memsz: bigint;
  }[];
  /** Sections 1 and up (section 0 is the null section). */
  sections: {
    name: string;
    type: string;
    addr: bigint;
    offset: number;
    size: number;
  }[];
}

/** Runs readelf and parses its header, program and section tables. */
export async function readelfTables(path: string): Promise<ReadelfTables> {
  const out = await check("readelf", ["-W", "-h", "-l", "-S", path]);
  const field = (label: string) => {
    const match = new RegExp(`^\\s*${label}:\\s+(.*)$`, "m").exec(out);
    if (!match) throw new Error(`readelf printed no '${label}' for ${path}`);
    return match[1]!.trim();
  };
  const number = (label: string) => Number.parseInt(field(label), 10);
  const header = {
    class: field("Class") === "ELF64" ? 64 : 32,
    littleEndian: field("Data").includes("little endian"),
    entry: BigInt(field("Entry point address")),
    phoff: number("Start of program headers"),
    shoff: number("Start of section headers"),
    phentsize: number("Size of program headers"),
    phnum: number("Number of program headers"),
    shentsize: number("Size of section headers"),
    shnum: number("Number of section headers"),
    shstrndx: number("Section header string table index"),
  };
  const programs = [];
  const programRow =
    /^\s+(\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s/;
  const sections = [];
  const sectionRow =
    /^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s/;
  for (const line of out.split("\n")) {
    const p = programRow.exec(line);
    if (p) {
      programs.push({
        type: p[1]!,
        offset: Number.parseInt(p[2]!, 16),
        vaddr: BigInt(`0x${p[3]}`),
        filesz: Number.parseInt(p[5]!, 16),
        memsz: BigInt(`0x${p[6]}`),
      });
      continue;
    }
    const s = sectionRow.exec(line);
    if (s && s[1] !== "0") {
      sections.push({
        name: s[2]!,
        type: s[3]!,
        addr: BigInt(`0x${s[4]}`),
        offset: Number.parseInt(s[5]!, 16),
        size: Number.parseInt(s[6]!, 16),
      });
    }
  }
  return { header, programs, sections };
}

/** What `eu-readelf -n` says about a core's CORE notes. */
export interface EuCoreNotes {
  /** Per NT_PRSTATUS: the thread id and cursig. */
  threads: { pid: number; cursig: number }[];
  process?: {
    uid: number;
    gid: number;
    pid: number;
    ppid: number;
    fname: string;
    psargs: string;
  };
  siginfo?: { signo: number; errno: number; code: number };
  /** NT_AUXV entries by eu-readelf's name (ENTRY, PAGESZ ...) or number. */
  auxv: Map<string, bigint>;
  /** NT_FILE entries. */
  files: { start: bigint; end: bigint; offset: bigint; path: string }[];
}

/** Runs `eu-readelf -n` on a core and parses its CORE notes. */
export async function euReadelfNotes(path: string): Promise<EuCoreNotes> {
  const out = await check("eu-readelf", ["-n", path]);
  const result: EuCoreNotes = { threads: [], auxv: new Map(), files: [] };
  let section = "";
  for (const line of out.split("\n")) {
    const head = /^\s+CORE\s+\d+\s+(\S+)/.exec(line);
    if (head) {
      section = head[1]!;
      continue;
    }
    if (/^\s+\S+\s+\d+\s+\S+/.test(line) && !line.startsWith("    ")) {
      section = "";
      continue;
    }
    if (section === "PRSTATUS") {
      const cursig = /cursig: (\d+)/.exec(line);
      if (cursig) result.threads.push({ pid: 0, cursig: Number(cursig[1]) });
      const pid = /^\s+pid: (\d+)/.exec(line);
      if (pid) result.threads.at(-1)!.pid = Number(pid[1]);
    } else if (section === "PRPSINFO") {
      const ids = /uid: (\d+), gid: (\d+), pid: (\d+), ppid: (\d+)/.exec(line);
      if (ids) {
        result.process = {
          uid: Number(ids[1]),
          gid: Number(ids[2]),
          pid: Number(ids[3]),
          ppid: Number(ids[4]),
          fname: "",
          psargs: "",
        };
      }
      // Long values wrap: fname and psargs may stand on lines of their own.
      const fname = /fname: ([^,]*)/.exec(line);
      if (fname && result.process) result.process.fname = fname[1]!.trimEnd();
      const psargs = /psargs: (.*)$/.exec(line);
      if (psargs && result.process) {
        result.process.psargs = psargs[1]!.trimEnd();
      }
    } else if (section === "SIGINFO") {
      const info = /si_signo: (-?\d+), si_errno: (-?\d+), si_code: (-?\d+)/
        .exec(line);
      if (info) {
        result.siginfo = {
          signo: Number(info[1]),
          errno: Number(info[2]),
          code: Number(info[3]),
        };
      }
    } else if (section === "AUXV") {
      const entry = /^\s+(\w+): (0x[0-9a-f]+|\d+)/.exec(line);
      if (entry) result.auxv.set(entry[1]!, BigInt(entry[2]!));
    } else if (section === "FILE") {
      const file = /^\s+([0-9a-f]+)-([0-9a-f]+) ([0-9a-f]+) \d+\s+(.*)$/.exec(
        line,
      );
      if (file) {
        result.files.push({
          start: BigInt(`0x${file[1]}`),
          end: BigInt(`0x${file[2]}`),
          offset: BigInt(`0x${file[3]}`),
          path: file[4]!,
        });
      }
    }
  }
  return result;
}

/** `eu-unstrip -n --core`: each module's start address and build-id. */
export async function euUnstripModules(
  path: string,
): Promise<{ start: bigint; buildId: string; name: string }[]> {
  const out = await check("eu-unstrip", ["-n", "--core", path]);
  return out.trim().split("\n").map((line) => {
    const [range, id, , , name] = line.split(" ");
    return {
      start: BigInt(range!.split("+")[0]!),
      buildId: id!.split("@")[0]!,
      name: name ?? "",
    };
  });
}

/** `readelf -n`: the GNU build-id of a program, or undefined. */
export async function readelfBuildId(
  path: string,
): Promise<string | undefined> {
  const out = await check("readelf", ["-n", path]);
  return /Build ID: ([0-9a-f]+)/.exec(out)?.[1];
}
