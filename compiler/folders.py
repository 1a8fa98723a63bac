"""Writing output folders atomically, so a failure never leaves a half-written folder, and
never replacing anything qnnc did not write.

Every folder written here gets, in its manifest.json, the list of what it holds (``files``).
An existing output is replaced only when it is empty or holds exactly what its manifest lists:
a folder a user added a file to, or any other folder, is refused with a message naming
``--force`` (``force=True``); a symbolic link is never followed into replacing its target.
Folders and files are created with the user's umask (a temporary folder alone would be 0700).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from compiler.errors import QnncError

MANIFEST_FILE = "manifest.json"
#: the manifest key listing every entry of the folder, as written
FILES_KEY = "files"


def listing(folder: Path) -> list[str]:
    """Every entry below ``folder`` as a relative POSIX path, folders with a trailing "/"."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [f"{(rel / d).as_posix()}/" for d in dirs]
        out += [(rel / f).as_posix() for f in files]
    return sorted(out)


def _foreign(target: Path) -> list[str]:
    """What ``target`` (an existing folder) holds that its manifest does not list: [] when
    it is empty or exactly a previous qnnc output."""
    entries = listing(target)
    if not entries:
        return []
    try:
        data = json.loads((target / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return entries
    files = data.get(FILES_KEY) if isinstance(data, dict) else None
    if not (isinstance(files, list) and "qnnc_version" in data):
        return entries
    return sorted(set(entries) - set(files))  # what it lists and lacks, it may still replace


def check_output_folder(target: Path, force: bool = False) -> None:
    """Raise QnncError unless ``target`` may be written (absent, empty, a previous qnnc
    output, or any folder with ``force``); never a file or a symbolic link."""
    if target.is_symlink():
        raise QnncError(
            f"output {str(target)!r} is a symbolic link (to {os.readlink(target)!r}); qnnc "
            "does not replace what a link points to: give the real folder's path")
    if not target.exists():
        return
    if not target.is_dir():
        raise QnncError(f"output {str(target)!r} already exists and is a file; refusing to "
                        "overwrite it. Choose another output folder.")
    foreign = [] if force else _foreign(target)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise QnncError(
            f"output {str(target)!r} already exists and holds what qnnc did not write "
            f"({shown}); refusing to replace it. Choose another output folder, or pass "
            "--force (force=True) to replace the folder and everything in it.")


def write_folder_atomically(target: Path, fill: Callable[[Path], None], *,
                            force: bool = False) -> Path:
    """Build the folder in a temporary sibling with ``fill``, then rename it into place.

    A failure while filling leaves nothing behind (not even parent folders this call
    created). An existing target is replaced only as :func:`check_output_folder` allows.
    """
    check_output_folder(target, force)
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
        _record_listing(tmp)
        apply_umask(tmp)
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


def _record_listing(folder: Path) -> None:
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict):
        data[FILES_KEY] = listing(folder)
        path.write_text(json.dumps(data, indent=2) + "\n")


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


def _remove_dirs(created: list[Path]) -> None:
    for d in created:  # innermost first
        try:
            d.rmdir()
        except OSError:
            pass
