"""What a non-editable install ships: the C sources beside the packages, where the host
builds (targets/host/build.py) and the Python side's C helpers (compiler/native_build.py)
look for them."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11 and later")

ROOT = Path(__file__).resolve().parent.parent


def test_every_csrc_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "csrc" in config["packages"]["find"]["include"]
    globs = config["package-data"]["csrc"]
    files = sorted(p.name for p in (ROOT / "csrc").iterdir() if p.is_file())
    assert files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not unshipped, f"csrc files a wheel would leave out: {unshipped}"


def test_the_sources_are_found_beside_the_packages() -> None:
    from compiler.native_build import CSRC as helpers
    from targets.host.build import CSRC as headers

    assert headers == helpers == ROOT / "csrc"
