"""The small C libraries of qnnc's Python side (compiler/native_build.py): built once into
the cache, and where the C compiler fails, None (the callers compute with numpy) with
nothing left behind."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from compiler.interp_kernels import SOURCE
from compiler.native_build import build, load


def test_built_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = load(SOURCE, "qnnc_interp", ("-fno-trapping-math",))
    if first is None:
        pytest.skip("no C compiler")
    assert isinstance(first, ctypes.CDLL)
    libs = list((tmp_path / "qnnc").glob("qnnc_interp-*/libqnnc_interp.so"))
    assert len(libs) == 1
    stamp = libs[0].stat().st_mtime_ns
    again = build(SOURCE, "qnnc_interp", ("-fno-trapping-math",), tmp_path / "qnnc")
    assert again == libs[0] and again.stat().st_mtime_ns == stamp  # not rebuilt
    # other flags: another library beside it
    build(SOURCE, "qnnc_interp", (), tmp_path / "qnnc")
    assert len(list((tmp_path / "qnnc").glob("qnnc_interp-*"))) == 2


def test_a_failing_compiler_gives_none_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cc = tmp_path / "broken-cc"
    cc.write_text("#!/bin/sh\necho 'cc: internal error' >&2\nexit 1\n")
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert load(SOURCE, "qnnc_interp") is None
    assert list((tmp_path / "cache" / "qnnc").iterdir()) == []  # no half-built folder
    with pytest.raises(RuntimeError, match="internal error"):
        build(SOURCE, "qnnc_interp", (), tmp_path / "cache" / "qnnc")


def test_no_compiler_at_all_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert load(SOURCE, "qnnc_interp") is None
