"""Compile, golden, example and run outputs never lose a file qnnc did not write: an existing
output folder is replaced only when it holds exactly what its manifest lists (or with
--force), a symbolic link is never followed into replacing its target, files are not
overwritten without --force, and what qnnc writes gets the user's umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main
from compiler.folders import FILES_KEY, listing


def _compile(tiny: Path, out: Path, *extra: str) -> int:
    return main(["compile", str(tiny), "-o", str(out), "-q", *extra])


def test_recompiling_into_a_previous_output_is_allowed(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert _compile(tiny, out) == 0
    assert json.loads((out / "manifest.json").read_text())[FILES_KEY] == listing(out)
    assert _compile(tiny, out) == 0


def test_a_file_added_to_an_output_stops_the_next_compile(tiny: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    out = tmp_path / "b"
    assert _compile(tiny, out) == 0
    (out / "notes.md").write_text("mine")
    assert _compile(tiny, out) == 1
    err = capsys.readouterr().err
    assert "notes.md" in err and "--force" in err
    assert (out / "notes.md").read_text() == "mine"
    assert _compile(tiny, out, "--force") == 0  # the user asked
    assert not (out / "notes.md").exists()


def test_a_foreign_manifest_is_not_a_licence(tiny: Path, tmp_path: Path) -> None:
    """A folder whose manifest.json merely has a qnnc_version key is not a qnnc output."""
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"qnnc_version": "0.1.0"}))
    (out / "data.csv").write_text("1,2,3")
    assert _compile(tiny, out) == 1
    assert sorted(f.name for f in out.iterdir()) == ["data.csv", "manifest.json"]


def test_a_symlinked_output_is_never_followed(tiny: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real"
    assert _compile(tiny, real) == 0
    before = listing(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    for extra in ((), ("--force",)):
        assert _compile(tiny, link, *extra) == 1
        assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and listing(real) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["calib.npz", "tiny.onnx", "real", "link"])  # no .link.old.* left behind


def test_example_and_run_outputs_need_force_to_overwrite(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"my own model")
    assert main(["example", "tiny_cnn", "-o", str(onnx_path)]) == 1
    assert "--force" in capsys.readouterr().err and onnx_path.read_bytes() == b"my own model"
    fresh = tmp_path / "t.onnx"
    (tmp_path / "t_calib.npz").write_bytes(b"my samples")
    assert main(["example", "tiny_cnn", "-o", str(fresh), "--calib-samples", "2"]) == 1
    assert not fresh.exists() and (tmp_path / "t_calib.npz").read_bytes() == b"my samples"
    assert main(["example", "tiny_cnn", "-o", str(fresh)]) == 0  # the npz is not written
    assert main(["example", "tiny_cnn", "-o", str(onnx_path), "--force"]) == 0
    out = tmp_path / "y.npz"
    out.write_bytes(b"results")
    capsys.readouterr()
    assert main(["run", str(fresh), "--random-input", "-o", str(out)]) == 1
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"results"
    assert main(["run", str(fresh), "--random-input", "-o", str(out), "--force", "-q"]) == 0
    assert set(np.load(out).files)


def test_outputs_get_the_users_umask(tiny: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "b"
        assert _compile(tiny, out, "--target", "host") == 0
        assert main(["example", "tiny_cnn", "-o", str(tmp_path / "e.onnx")]) == 0
        assert main(["run", str(out), "--random-input", "-o", str(tmp_path / "y.npz"),
                     "-q"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "manifest.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "e.onnx").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "y.npz").stat().st_mode) == 0o644
    modules = [p for p in out.iterdir() if p.suffix == ".so"]
    assert modules and all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in modules)


def test_golden_record_keeps_foreign_files(tiny: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g"
    out.mkdir()
    (out / "README").write_text("mine")
    assert main(["golden", "record", str(tiny), "--random-input", "-o", str(out), "-q"]) == 1
    assert "--force" in capsys.readouterr().err and (out / "README").exists()
    assert main(["golden", "record", str(tiny), "--random-input", "-o", str(out), "-q",
                 "--force"]) == 0
    assert main(["golden", "check", str(out), "-q"]) == 0
