"""The C toolchain that links a TVM-built library for another architecture.

TVM's LLVM backend writes the object code for any architecture it knows; turning that into a
shared library takes a linker for that architecture. In order of preference:

- ``$QNNC_CC_<ARCH>`` (e.g. ``QNNC_CC_AARCH64="clang --target=aarch64-linux-gnu"``), a
  command the user chose;
- ``<triple>-gcc`` on the PATH (Debian: ``apt-get install gcc-aarch64-linux-gnu``);
- ``zig cc -target <triple>`` from the ``ziglang`` package on PyPI (in ``qnnc[tvm]``), which
  carries its own C library headers for every architecture, so nothing else is needed.

None of them: one error naming what to install. The same compilers link the standalone
program (standalone.py) statically.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from ir.errors import QnncError

#: architecture -> (GNU triple, ELF e_machine)
ARCHES: dict[str, tuple[str, int]] = {
    "x86_64": ("x86_64-linux-gnu", 0x3E),
    "aarch64": ("aarch64-linux-gnu", 0xB7),
    "riscv64": ("riscv64-linux-gnu", 0xF3),
}


def cross_compiler(arch: str) -> list[str]:
    """The command (argv prefix) of a C compiler that links shared libraries for ``arch``."""
    if arch not in ARCHES:
        raise QnncError(f"no cross toolchain is known for architecture {arch!r}; qnnc links "
                        f"for {', '.join(ARCHES)}")
    triple = ARCHES[arch][0]
    var = f"QNNC_CC_{arch.upper()}"
    own = os.environ.get(var, "").strip()
    if own:
        return shlex.split(own)
    gcc = shutil.which(f"{triple}-gcc")
    if gcc is not None:
        return [gcc]
    if importlib.util.find_spec("ziglang") is not None:
        return [sys.executable, "-m", "ziglang", "cc", "-target", triple]
    raise QnncError(
        f"linking the library for {arch} needs a C compiler for {triple}: install one with "
        f"`pip install ziglang` (part of `pip install 'qnnc[tvm]'`) or `apt-get install "
        f"gcc-{triple}`, or name your own in ${var}")


def static_compiler(arch: str) -> list[str]:
    """A C compiler command that links static programs for ``arch`` (the standalone
    program, standalone.py): ``$QNNC_CC_<ARCH>`` or ``<triple>-gcc`` as for libraries
    (given ``-static``; a cross gcc needs that architecture's libc, e.g. Debian's
    libc6-dev-arm64-cross), else ``zig cc`` against its own musl, which needs nothing."""
    cc = cross_compiler(arch)
    if cc[1:4] == ["-m", "ziglang", "cc"]:
        return [*cc[:-1], ARCHES[arch][0].replace("-gnu", "-musl")]
    return cc


@dataclass(frozen=True)
class ElfInfo:
    """What a shared library is built for and which symbols it exports."""

    arch: str  # a key of ARCHES, or "e_machine=0x.." for another
    symbols: frozenset[str]  # defined, global dynamic symbols


def elf_info(path: str | os.PathLike[str]) -> ElfInfo:
    """Read a 64-bit little-endian ELF's machine and exported dynamic symbols (no tool needed,
    so a library for another architecture can be checked on this host)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise QnncError(f"{str(path)!r} is not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", data, 18)
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum)]
    symbols: set[str] = set()
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        str_off = strtab[4]
        for k in range(sh[5] // 24):
            name, info, _, shndx = struct.unpack_from("<IBBH", data, sh[4] + k * 24)
            if shndx != 0 and info >> 4 in (1, 2) and name:  # defined, GLOBAL or WEAK
                end = data.index(b"\0", str_off + name)
                symbols.add(data[str_off + name:end].decode())
    arch = next((a for a, (_, m) in ARCHES.items() if m == machine), f"e_machine={machine:#x}")
    return ElfInfo(arch, frozenset(symbols))
