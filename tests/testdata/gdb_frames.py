"""Prints gdb's stack trace of every thread of a core as one line of JSON.

    gdb -batch -nx -ex 'set pagination off' [-ex 'set sysroot DIR'] \
        -x tests/testdata/gdb_frames.py PROGRAM CORE

(gdb-multiarch for a foreign architecture.) The line is

    {"threads": [{"num": N, "tid": LWP, "frames": [
        {"pc": "0x...", "function": NAME or null, "inline": BOOL,
         "type": "normal" | "sigtramp" | "inline" | "tailcall" | ...}]}]}

threads sorted by gdb's thread number (1 is the core's first NT_PRSTATUS:
the thread that crashed, in the kernel's cores), frames from the newest, at
most 64 of them. A gdb.error in the middle of a walk ends that thread's list
where it happened; the stack trace is the oracle the unwinder is checked
against, so it must never be made up. The test oracle of issue #12
(tests/_unwind_fixtures.ts runs it).
"""

import json

import gdb

MAX_FRAMES = 64

FRAME_TYPES = {
    gdb.NORMAL_FRAME: "normal",
    gdb.DUMMY_FRAME: "dummy",
    gdb.INLINE_FRAME: "inline",
    gdb.TAILCALL_FRAME: "tailcall",
    gdb.SIGTRAMP_FRAME: "sigtramp",
    gdb.ARCH_FRAME: "arch",
    gdb.SENTINEL_FRAME: "sentinel",
}


def frames_of(thread):
    """The frames of one thread, newest first, as far as gdb gets."""
    frames = []
    try:
        thread.switch()
        frame = gdb.newest_frame()
    except gdb.error:
        return frames
    while frame is not None and len(frames) < MAX_FRAMES:
        try:
            kind = frame.type()
            frames.append({
                "pc": "0x%x" % frame.pc(),
                "function": frame.name(),
                "inline": kind == gdb.INLINE_FRAME,
                "type": FRAME_TYPES.get(kind, str(kind)),
            })
            frame = frame.older()
        except gdb.error:
            break
    return frames


def main():
    # Past main too (__libc_start_call_main, ..., _start): the unwinder must
    # get there as well. gdb still stops where the CFI marks the outermost
    # frame (_start, clone3).
    gdb.execute("set backtrace past-main on")
    threads = []
    try:
        inferior_threads = sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
    except gdb.error:
        inferior_threads = []
    for thread in inferior_threads:
        pid, lwp, tid = thread.ptid
        threads.append({"num": thread.num, "tid": lwp or tid or pid,
                        "frames": frames_of(thread)})
    print(json.dumps({"threads": threads}, separators=(",", ":")))


main()
