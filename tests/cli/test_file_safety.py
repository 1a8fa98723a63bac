"""qnnc never deletes a file it did not write: an existing output folder is replaced only if
it holds exactly a previous qnnc output (by its manifest's file list), a symbolic link given
as the output is never followed, example and run outputs are not overwritten without
--force, and the build cache's housekeeping touches only folders named as qnnc names them.
Every test works in its own tmp_path."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import onnx
import pytest

from compiler.errors import QnncError
from compiler.examples import build_example
from compiler.folders import MANIFEST_FILE, write_folder_atomically
from targets.host.cache import cache_info, clean_stale, clear_cache
from tests.cli.models import assert_one_paragraph_error, run_cli

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), p)
    return p


def _compile(tiny: Path, out: Path, capsys: Capsys, *extra: str):
    return run_cli(["compile", str(tiny), "-o", str(out), "-q", *extra], capsys)


def test_the_manifest_lists_every_file_qnnc_wrote(tiny: Path, tmp_path: Path,
                                                   capsys: Capsys) -> None:
    out = tmp_path / "out"
    assert _compile(tiny, out, capsys).code == 0
    listed = json.loads((out / MANIFEST_FILE).read_text())["files"]
    on_disk = sorted(p.name for p in out.iterdir() if p.name != MANIFEST_FILE)
    assert listed == on_disk and "model.ir" in listed


def test_recompiling_into_a_previous_output_replaces_it(tiny: Path, tmp_path: Path,
                                                        capsys: Capsys) -> None:
    out = tmp_path / "out"
    assert _compile(tiny, out, capsys).code == 0
    (out / "model.ir.npz").unlink(missing_ok=True)  # a listed file gone is no user file
    first = (out / "model.ir").stat().st_ino
    assert _compile(tiny, out, capsys).code == 0
    assert (out / "model.ir").stat().st_ino != first  # written anew


def test_a_file_the_user_added_blocks_the_replacement(tiny: Path, tmp_path: Path,
                                                      capsys: Capsys) -> None:
    out = tmp_path / "out"
    assert _compile(tiny, out, capsys).code == 0
    (out / "notes.txt").write_text("mine")
    r = _compile(tiny, out, capsys)
    assert_one_paragraph_error(r, 1, "notes.txt", "qnnc did not write", "--force")
    assert (out / "notes.txt").read_text() == "mine"
    assert _compile(tiny, out, capsys, "--force").code == 0
    assert not (out / "notes.txt").exists() and (out / "model.ir").is_file()


def test_a_fake_qnnc_manifest_does_not_make_a_folder_replaceable(
        tiny: Path, tmp_path: Path, capsys: Capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / MANIFEST_FILE).write_text(json.dumps({"qnnc_version": "0.1.0"}))
    (out / "thesis.tex").write_text("years of work")
    r = _compile(tiny, out, capsys)
    assert_one_paragraph_error(r, 1, "older qnnc", "--force")
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_folder_without_manifest_and_a_file_are_refused(tiny: Path, tmp_path: Path,
                                                          capsys: Capsys) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8")
    assert_one_paragraph_error(_compile(tiny, folder, capsys), 1, "did not write", "--force")
    f = tmp_path / "plain.txt"
    f.write_text("x")
    assert_one_paragraph_error(_compile(tiny, f, capsys), 1, "is a file", "--force")
    assert (folder / "a.jpg").read_bytes() == b"\xff\xd8" and f.read_text() == "x"


def test_an_empty_folder_is_filled(tiny: Path, tmp_path: Path, capsys: Capsys) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _compile(tiny, out, capsys).code == 0
    assert (out / "model.ir").is_file()


@pytest.mark.parametrize("force", [False, True])
def test_a_symlinked_output_is_never_followed(tiny: Path, tmp_path: Path, capsys: Capsys,
                                              force: bool) -> None:
    real = tmp_path / "real"
    assert _compile(tiny, real, capsys).code == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    before = sorted(p.name for p in real.iterdir())
    r = _compile(tiny, link, capsys, *(["--force"] if force else []))
    assert_one_paragraph_error(r, 1, "symbolic link")
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if ".old." in p.name] == []


def test_a_failed_fill_leaves_the_old_folder_and_no_debris(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def good(folder: Path) -> None:
        (folder / "a.txt").write_text("1")
        (folder / MANIFEST_FILE).write_text(json.dumps({"qnnc_version": "x"}))

    def boom(folder: Path) -> None:
        raise RuntimeError("fill failed")

    write_folder_atomically(out, good)
    with pytest.raises(RuntimeError):
        write_folder_atomically(out, boom)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "a.txt").read_text() == "1"


def test_force_replaces_a_plain_file_in_the_api(tmp_path: Path) -> None:
    f = tmp_path / "out"
    f.write_text("old")
    with pytest.raises(QnncError, match="is a file"):
        write_folder_atomically(f, lambda d: None)
    write_folder_atomically(f, lambda d: (d / "x").write_text("new"), force=True)
    assert (f / "x").read_text() == "new"


def test_example_refuses_to_overwrite_without_force(tmp_path: Path, capsys: Capsys) -> None:
    out = tmp_path / "tiny.onnx"
    calib = tmp_path / "tiny_calib.npz"
    out.write_text("my model")
    r = run_cli(["example", "tiny_cnn", "-o", str(out)], capsys)
    assert_one_paragraph_error(r, 1, "tiny.onnx", "already exists", "--force")
    assert out.read_text() == "my model"
    out.unlink()
    calib.write_text("my samples")
    r = run_cli(["example", "tiny_cnn", "-o", str(out), "--calib-samples", "2"], capsys)
    assert_one_paragraph_error(r, 1, "tiny_calib.npz", "--force")
    assert calib.read_text() == "my samples" and not out.exists()
    r = run_cli(["example", "tiny_cnn", "-o", str(out), "--calib-samples", "2", "--force"],
                capsys)
    assert r.code == 0 and onnx.load(out).graph.node and calib.read_bytes()[:2] == b"PK"


def test_run_output_refuses_to_overwrite_without_force(tiny: Path, tmp_path: Path,
                                                       capsys: Capsys) -> None:
    out = tmp_path / "y.npz"
    out.write_text("earlier results")
    r = run_cli(["run", str(tiny), "--random-input", "--output", str(out)], capsys)
    assert_one_paragraph_error(r, 1, "y.npz", "already exists", "--force")
    assert out.read_text() == "earlier results"
    r = run_cli(["run", str(tiny), "--random-input", "--output", str(out), "--force", "-q"],
                capsys)
    assert r.code == 0 and out.read_bytes()[:2] == b"PK"


def _fake_cache(root: Path) -> dict[str, Path]:
    root.mkdir()
    entries = {
        "build": root / f"host-{'a' * 20}",
        "killed": root / f".host-{'b' * 20}.k1ll3d_",
        "running": root / f".host-{'c' * 20}.runn1ng",
        "user": root / "my-notes",
        "user_hidden": root / ".host-not-hex.xyz",
    }
    for p in entries.values():
        p.mkdir()
        (p / "f.bin").write_bytes(b"\0" * 1000)
    old = time.time() - 2 * 3600
    for name in ("killed", "build"):
        os.utime(entries[name] / "f.bin", (old, old))
        os.utime(entries[name], (old, old))
    os.utime(entries["user_hidden"] / "f.bin", (old, old))
    os.utime(entries["user_hidden"], (old, old))
    return entries


def test_stale_build_folders_are_removed_by_age_only(tmp_path: Path) -> None:
    e = _fake_cache(tmp_path / "cache")
    assert clean_stale(tmp_path / "cache") == 1
    assert not e["killed"].exists()
    assert all(e[k].exists() for k in ("build", "running", "user", "user_hidden"))


def test_cache_info_and_clear(tmp_path: Path, capsys: Capsys) -> None:
    root = tmp_path / "cache"
    e = _fake_cache(root)
    info = cache_info(root)
    assert (info.builds, info.unfinished, info.bytes) == (1, 2, 3000)
    r = run_cli(["cache", "info", "--cache-dir", str(root)], capsys)
    assert r.code == 0 and str(root) in r.out and "1 finished, 2 unfinished" in r.out
    r = run_cli(["cache", "clear", "--cache-dir", str(root)], capsys)
    assert r.code == 0 and "removed 1 build(s) and 1 unfinished" in r.out
    assert not e["build"].exists() and not e["killed"].exists()
    assert e["running"].exists() and e["user"].exists() and e["user_hidden"].exists()
    assert clear_cache(tmp_path / "absent").builds == 0
