#!/usr/bin/env python3
"""Rewrites a core file into the layout the Linux kernel writes.

    python3 tests/testdata/kernel_layout.py CORE OUT

gdb's `generate-core-file` (what tests/_helpers.ts falls back to when
core_pattern pipes cores away) puts the PT_NOTE data at the END of the file,
after every load segment, and adds section headers. The kernel
(fs/binfmt_elf.c, elf_core_dump) writes:

    ELF header | program headers | PT_NOTE data | padding to a page |
    PT_LOAD data, each segment at a page-aligned offset, in header order

with no section headers. A tool that reads a core as it streams by (as
core_pattern delivers it) sees the notes before the memory only in the
kernel's layout, so the tests' fixtures must have it.

This script keeps the ELF header (except e_shoff/e_shnum/e_shstrndx, zeroed
as the kernel leaves them), every program header in order, every note byte
and every byte of every segment; it only moves the data and updates p_offset
(and sets p_align, and the note's p_flags, as the kernel does). ELF32 and
ELF64 of either byte order. Check a result with `readelf -lW OUT` (NOTE
first, LOAD offsets page-aligned) and `eu-unstrip -n --core OUT` (the same
modules and build-ids as the input).
"""

import struct
import sys

PAGE = 4096
PT_LOAD, PT_NOTE = 1, 4


def main(source, target):
    with open(source, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        sys.exit(f"{source}: not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        ehdr = struct.Struct(end + "16sHHIQQQIHHHHHH")
        phdr = struct.Struct(end + "IIQQQQQQ")  # type flags off vaddr paddr filesz memsz align
    else:
        ehdr = struct.Struct(end + "16sHHIIIIIHHHHHH")
        phdr = struct.Struct(end + "IIIIIIII")  # type off vaddr paddr filesz memsz flags align
    header = list(ehdr.unpack_from(data, 0))
    (e_type, e_phoff, e_phentsize, e_phnum) = (header[1], header[5], header[9], header[10])
    if e_type != 4:
        sys.exit(f"{source}: not a core file (e_type {e_type})")
    if e_phentsize != phdr.size:
        sys.exit(f"{source}: program header size {e_phentsize}, expected {phdr.size}")

    # Program headers as dictionaries, whatever the class.
    programs = []
    for i in range(e_phnum):
        raw = phdr.unpack_from(data, e_phoff + i * e_phentsize)
        if is64:
            p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = raw
        else:
            p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align = raw
        programs.append(dict(type=p_type, flags=p_flags, offset=p_offset, vaddr=p_vaddr,
                             paddr=p_paddr, filesz=p_filesz, memsz=p_memsz, align=p_align))
    for p in programs:
        if p["offset"] + p["filesz"] > len(data):
            sys.exit(f"{source}: a segment ends past the end of the file (truncated?)")

    # The kernel's order: headers, notes, then the page-aligned memory.
    header_size = ehdr.size
    offset = header_size + e_phnum * phdr.size
    chunks = []  # (new offset, bytes)
    for p in programs:
        if p["type"] == PT_NOTE:
            chunks.append((offset, data[p["offset"]:p["offset"] + p["filesz"]]))
            p["offset"], p["flags"], p["align"] = offset, 0, 4
            offset += p["filesz"]
    offset = -(-offset // PAGE) * PAGE
    for p in programs:
        if p["type"] == PT_LOAD:
            chunks.append((offset, data[p["offset"]:p["offset"] + p["filesz"]]))
            p["offset"], p["align"] = offset, PAGE
            offset += -(-p["filesz"] // PAGE) * PAGE
        elif p["type"] != PT_NOTE:
            sys.exit(f"{source}: program header of type {p['type']:#x}, expected only notes and loads")

    header[5] = header_size  # e_phoff: right after the ELF header
    header[6] = 0  # e_shoff: no section headers
    header[11] = header[12] = header[13] = 0  # e_shentsize e_shnum e_shstrndx
    out = bytearray(offset)
    ehdr.pack_into(out, 0, *header)
    for i, p in enumerate(programs):
        at = header_size + i * phdr.size
        if is64:
            phdr.pack_into(out, at, p["type"], p["flags"], p["offset"], p["vaddr"], p["paddr"],
                           p["filesz"], p["memsz"], p["align"])
        else:
            phdr.pack_into(out, at, p["type"], p["offset"], p["vaddr"], p["paddr"], p["filesz"],
                           p["memsz"], p["flags"], p["align"])
    for at, chunk in chunks:
        out[at:at + len(chunk)] = chunk
    # The last segment's page padding is not written by the kernel either.
    last = max((at + len(chunk) for at, chunk in chunks), default=len(out))
    last = max(last, header_size + e_phnum * phdr.size)
    with open(target, "wb") as f:
        f.write(out[:last])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: kernel_layout.py CORE OUT")
    main(sys.argv[1], sys.argv[2])
