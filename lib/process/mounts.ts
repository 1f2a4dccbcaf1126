/**
 * Which file systems a path or a mapping lives on, from `/proc/<pid>/
 * mountinfo` and `/proc/<pid>/maps` alone (reading them never waits on a
 * file system): a crash handler must not open files on a FUSE or network
 * file system while the crashed process is frozen, since that process may
 * be the FUSE server itself, or the server may be gone.
 *
 * @module
 */

/** One mount. */
export interface Mount {
  /** The device, `major:minor`. */
  device: string;
  /** Where it is mounted. */
  mountPoint: string;
  /** Its file system type: `ext4`, `fuse.sshfs`, `nfs4` ... */
  fsType: string;
}

/** File system types whose opens can wait on a process or a network. */
const WAITING =
  /^(fuse|nfs|cifs|smb|9p|ceph|afs|glusterfs|lustre|gfs2|ocfs2|vboxsf|davfs|sshfs)/;

/**
 * True for a FUSE or network file system type.
 *
 * @example Usage
 * ```ts
 * import { mayWait } from "./mounts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mayWait("fuse.sshfs"), true);
 * assert.equal(mayWait("nfs4"), true);
 * assert.equal(mayWait("ext4"), false);
 * ```
 *
 * @param fsType A type as mountinfo names it.
 * @returns Whether opening a file there may wait.
 */
export function mayWait(fsType: string): boolean {
  return WAITING.test(fsType);
}

/**
 * Parses `/proc/<pid>/mountinfo`.
 *
 * @example Usage
 * ```ts
 * import { parseMountInfo } from "./mounts.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "36 35 98:0 / /mnt\\040x rw,noatime master:1 - fuse.sshfs host:/ rw\n";
 * assert.deepEqual(parseMountInfo(text), [
 *   { device: "98:0", mountPoint: "/mnt x", fsType: "fuse.sshfs" },
 * ]);
 * ```
 *
 * @param text The file's text.
 * @returns Its mounts, in its order.
 */
export function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 2) continue;
    mounts.push({
      device: fields[2]!,
      mountPoint: unescape(fields[4]!),
      fsType: fields[dash + 1]!,
    });
  }
  return mounts;
}

/**
 * The mount a path is under, by its text: the longest mount point that
 * leads it (the path is not looked up, so nothing waits).
 *
 * @example Usage
 * ```ts
 * import { mountOf } from "./mounts.ts";
 * import assert from "node:assert/strict";
 *
 * const mounts = [
 *   { device: "8:1", mountPoint: "/", fsType: "ext4" },
 *   { device: "0:50", mountPoint: "/mnt/remote", fsType: "nfs4" },
 * ];
 * assert.equal(mountOf("/mnt/remote/lib/x.so", mounts)?.fsType, "nfs4");
 * assert.equal(mountOf("/mnt/remotely/x.so", mounts)?.fsType, "ext4");
 * ```
 *
 * @param path An absolute path.
 * @param mounts From {@linkcode parseMountInfo}.
 * @returns The mount, or undefined when none leads the path.
 */
export function mountOf(path: string, mounts: Mount[]): Mount | undefined {
  let best: Mount | undefined;
  for (const mount of mounts) {
    const point = mount.mountPoint;
    const under = point === "/" || path === point ||
      path.startsWith(`${point}/`);
    // The later of two mounts on one point hides the earlier.
    if (
      under && (best === undefined || point.length >= best.mountPoint.length)
    ) {
      best = mount;
    }
  }
  return best;
}

/**
 * The devices (`major:minor`) of a process's file mappings, by path, from
 * `/proc/<pid>/maps`.
 *
 * @example Usage
 * ```ts
 * import { parseMapsDevices } from "./mounts.ts";
 * import assert from "node:assert/strict";
 *
 * const maps = "55d0c000-55d0d000 r--p 00000000 08:01 1234  /usr/bin/prog\n" +
 *   "7ffd1000-7ffd2000 rw-p 00000000 00:00 0  [stack]\n";
 * assert.deepEqual(parseMapsDevices(maps), new Map([["/usr/bin/prog", "8:1"]]));
 * ```
 *
 * @param text The file's text.
 * @returns Path to device, with the kernel's zero-padded hex made plain.
 */
export function parseMapsDevices(text: string): Map<string, string> {
  const devices = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\S+ \S+ \S+ ([0-9a-f]+):([0-9a-f]+) \d+ +(\/.*)$/.exec(
      line,
    );
    if (match === null) continue;
    devices.set(
      match[3]!,
      `${parseInt(match[1]!, 16)}:${parseInt(match[2]!, 16)}`,
    );
  }
  return devices;
}

/** mountinfo's octal escapes (`\040` for a space). */
function unescape(text: string): string {
  return text.replace(
    /\\([0-7]{3})/g,
    (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
  );
}
