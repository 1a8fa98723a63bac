"""Writing output folders atomically, so a failure never leaves a half-written folder or
replaces a folder qnnc did not write."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from compiler.errors import QnncError

MANIFEST_FILE = "manifest.json"


def _is_replaceable(target: Path) -> bool:
    """An existing folder we may overwrite: empty, or one qnnc wrote (it has a manifest)."""
    if not target.is_dir():
        return False
    if not any(target.iterdir()):
        return True
    try:
        data = json.loads((target / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "qnnc_version" in data


def write_folder_atomically(target: Path, fill: Callable[[Path], None]) -> Path:
    """Build the folder in a temporary sibling with ``fill``, then rename it into place.

    A failure while filling leaves nothing behind (not even parent folders this call
    created). An existing target is replaced only if it is empty or was written by qnnc.
    """
    if target.exists() and not _is_replaceable(target):
        kind = "a file" if not target.is_dir() else "a folder qnnc did not write"
        raise QnncError(
            f"output {str(target)!r} already exists and is {kind}; refusing to overwrite it. "
            "Choose another output folder."
        )
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
        if abs_target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{abs_target.name}.old.", dir=abs_target.parent))
            old.rmdir()
            os.rename(abs_target, old)
            try:
                os.rename(tmp, abs_target)
            except BaseException:
                os.rename(old, abs_target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, abs_target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        raise
    return target


def _remove_dirs(created: list[Path]) -> None:
    for d in created:  # innermost first
        try:
            d.rmdir()
        except OSError:
            pass
