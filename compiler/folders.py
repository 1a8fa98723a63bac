"""Writing output folders atomically, and never deleting a file qnnc did not write.

A folder is built in a temporary sibling and renamed into place, so a failure never leaves a
half-written folder. Its manifest.json records every file qnnc put there ("files"); an
existing folder is replaced only if it is empty or holds exactly such a list (files the list
names may be missing, none may be added). Anything else — a user's folder, a qnnc folder
the user added files to, a folder from a qnnc too old to record its files, a file — is
refused with a message naming ``--force``. A symbolic link is never followed: replacing the
folder it points to would delete files outside the path the user named.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.errors import QnncError

MANIFEST_FILE = "manifest.json"
FILES_KEY = "files"
FORCE_HINT = "pass --force (force=True in Python) to replace it"


def folder_entries(folder: Path) -> list[str]:
    """Every file, link and non-empty-or-not folder leaf under ``folder`` (relative POSIX
    paths, sorted), links not followed; the top manifest.json left out."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            out.append((rel / name).as_posix())
    return sorted(p for p in out if p != MANIFEST_FILE)


def why_not_replaceable(target: Path) -> str | None:
    """None when qnnc may replace ``target``; otherwise what it is, for the error."""
    if target.is_symlink():
        return f"is a symbolic link (to {os.readlink(target)!r}); qnnc does not replace what a " \
               "link points to, so give that folder's own path, or another name"
    if not target.is_dir():
        return "is a file"
    entries = folder_entries(target)
    if not entries and not (target / MANIFEST_FILE).exists():
        return None
    try:
        data = json.loads((target / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return "is a folder qnnc did not write (it has no readable manifest.json)"
    if not isinstance(data, dict) or "qnnc_version" not in data:
        return "is a folder qnnc did not write (its manifest.json is not qnnc's)"
    listed = data.get(FILES_KEY)
    if not isinstance(listed, list) and _legacy_golden(data, entries):
        return None
    if not isinstance(listed, list):
        return ("was written by an older qnnc that did not record its files, so qnnc cannot "
                "tell them from yours")
    extra = sorted(set(entries) - {str(f) for f in listed})
    if extra:
        shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        return f"holds {len(extra)} file(s) qnnc did not write there ({shown})"
    return None


# what golden folders written before manifests listed their files hold (compiler/golden)
_LEGACY_GOLDEN_FILES = {"inputs.npz", "outputs.npz", "model.onnx", "calib.npz", MANIFEST_FILE}


def _legacy_golden(manifest: dict, entries: list[str]) -> bool:
    """A golden folder (or set) from before file lists, holding only golden files: updating
    it with `qnnc golden check --update` keeps working."""
    return manifest.get("kind") in ("qnnc-golden", "qnnc-golden-set") and all(
        e.count("/") <= 1 and e.rsplit("/", 1)[-1] in _LEGACY_GOLDEN_FILES for e in entries)


def check_replaceable(target: Path, force: bool = False) -> None:
    """Raise QnncError if writing ``target`` would replace something qnnc may not."""
    if target.is_symlink():  # even with force: the link's target is not what was named
        raise QnncError(f"output {str(target)!r} {why_not_replaceable(target)}")
    if force or not target.exists():
        return
    reason = why_not_replaceable(target)
    if reason is not None:
        raise QnncError(f"output {str(target)!r} already exists and {reason}; refusing to "
                        f"overwrite it. Choose another output, or {FORCE_HINT}.")


def manifest_json(data: Any) -> str:
    """How a manifest.json is written unless its writer says otherwise."""
    return json.dumps(data, indent=2) + "\n"


def write_folder_atomically(target: Path, fill: Callable[[Path], None], *,
                            force: bool = False,
                            dump: Callable[[Any], str] = manifest_json) -> Path:
    """Build the folder in a temporary sibling with ``fill``, then rename it into place.

    A failure while filling leaves nothing behind (not even parent folders this call
    created). An existing target is replaced only as the module docstring says (anything
    but a symbolic link with ``force``). A manifest.json that ``fill`` writes gets the list
    of files, which is what makes the folder replaceable next time; it is written back with
    ``dump``, the writer's own format.
    """
    check_replaceable(target, force)
    abs_target = target.absolute()
    created: list[Path] = []
    parent = abs_target.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    try:
        for d in reversed(created):
            d.mkdir()
        tmp = Path(tempfile.mkdtemp(prefix=f".{abs_target.name}.", dir=abs_target.parent))
    except OSError as e:
        _remove_dirs(created)
        raise QnncError(f"cannot create output folder {str(target)!r}: {e.strerror}") from None
    try:
        fill(tmp)
        _record_files(tmp, dump)
        apply_umask(tmp)  # mkdtemp makes 0700
        if abs_target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{abs_target.name}.old.", dir=abs_target.parent))
            old.rmdir()
            os.rename(abs_target, old)
            try:
                os.rename(tmp, abs_target)
            except BaseException:
                os.rename(old, abs_target)
                raise
            _remove(old)
        else:
            os.rename(tmp, abs_target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        raise
    return target


def _record_files(folder: Path, dump: Callable[[Any], str]) -> None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data[FILES_KEY] = folder_entries(folder)
        path.write_text(dump(data))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove_dirs(created: list[Path]) -> None:
    for d in created:  # innermost first
        try:
            d.rmdir()
        except OSError:
            pass


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give ``path`` (a folder, recursively, or a file) the modes a plain mkdir/open would:
    0777/0666 less the umask (tempfile makes 0700 folders and 0600 files)."""
    mask = umask()
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for f in files:
                fp = Path(root) / f
                if not fp.is_symlink():
                    executable = os.stat(fp).st_mode & 0o111
                    os.chmod(fp, (0o777 if executable else 0o666) & ~mask)
    elif not path.is_symlink():
        os.chmod(path, 0o666 & ~mask)


#: the names the rest of qnnc uses
check_output_folder = check_replaceable
listing = folder_entries
