"""Cross toolchains for the tvm target's libraries: which compiler is chosen, the error when
there is none, and the ELF reader that checks a library built for another architecture."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from ir.errors import QnncError
from targets.tvm import toolchains
from targets.tvm.toolchains import cross_compiler, elf_info


def test_the_users_compiler_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QNNC_CC_AARCH64", "clang --target=aarch64-linux-gnu")
    assert cross_compiler("aarch64") == ["clang", "--target=aarch64-linux-gnu"]


def test_no_toolchain_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QNNC_CC_RISCV64", raising=False)
    monkeypatch.setattr(toolchains.shutil, "which", lambda name: None)
    monkeypatch.setattr(toolchains.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(QnncError, match=r"pip install ziglang.*gcc-riscv64-linux-gnu.*"
                                        r"\$QNNC_CC_RISCV64"):
        cross_compiler("riscv64")
    with pytest.raises(QnncError, match="no cross toolchain is known for architecture 'mips'"):
        cross_compiler("mips")


def test_elf_reader_refuses_other_files(tmp_path: Path) -> None:
    p = tmp_path / "lib.so"
    p.write_bytes(b"not an ELF file")
    with pytest.raises(QnncError, match="not a 64-bit little-endian ELF"):
        elf_info(p)


@pytest.mark.skipif(importlib.util.find_spec("ziglang") is None,
                    reason="needs the ziglang package (in 'qnnc[tvm]') to cross-compile")
@pytest.mark.parametrize("arch", ["aarch64", "riscv64"])
def test_cross_built_library_is_read_back(tmp_path: Path, arch: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"QNNC_CC_{arch.upper()}", raising=False)
    monkeypatch.setattr(toolchains.shutil, "which", lambda name: None)  # zig, not a gcc
    src = tmp_path / "k.c"
    src.write_text("int qnnc_probe(int a) { return a + 1; }\nstatic int hidden(void) "
                   "{ return 0; }\nint (*keep)(void) = hidden;\n")
    lib = tmp_path / "k.so"
    subprocess.run([*cross_compiler(arch), "-shared", "-fPIC", "-O2", "-o", str(lib),
                    str(src)], check=True, capture_output=True)
    info = elf_info(lib)
    assert info.arch == arch
    assert "qnnc_probe" in info.symbols and "hidden" not in info.symbols
