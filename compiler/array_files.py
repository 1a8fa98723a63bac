"""Sizing .npy / .npz files from their headers before numpy reads them: a header may declare
any shape, and numpy allocates what it declares before it finds the data missing. A file whose
header declares more bytes than it holds, or more than the tensor size budget, is an
:class:`InputError` naming it."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from compiler.budget import FLAG, human_bytes
from compiler.errors import InputError


def check_array_file(path: Path, budget: int) -> None:
    """Raise InputError if an array in ``path`` (.npy or .npz) is truncated or over budget."""
    if path.suffix.lower() == ".npz":
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.filename.endswith(".npy"):
                        with zf.open(info) as f:
                            _check(f, info.file_size, f"{path}:{info.filename}", budget)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
            return  # numpy's own reader reports an unreadable archive
        return
    with open(path, "rb") as f:
        _check(f, path.stat().st_size, str(path), budget)


def _check(f: IO[bytes], stored: int, where: str, budget: int) -> None:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        header = f.tell()
    except (ValueError, OSError, EOFError, TypeError, SyntaxError):
        return  # not a well-formed header: numpy's reader says what is wrong
    if dtype.hasobject:
        return  # refused by allow_pickle=False with its own message
    declared = math.prod(int(d) for d in shape) * dtype.itemsize
    dims = "x".join(str(int(d)) for d in shape) or "a scalar"
    if declared > stored - header:
        raise InputError(
            f"input file {where!r} declares a {dims} {dtype} array ({human_bytes(declared)}) "
            f"but holds {human_bytes(max(stored - header, 0))} of data: the file is truncated "
            "or damaged. Save it again with numpy.save."
        )
    if declared > budget:
        raise InputError(
            f"input file {where!r} holds a {dims} {dtype} array ({human_bytes(declared)}), "
            f"over the tensor size budget of {human_bytes(budget)}; raise it with {FLAG} "
            "SIZE if the model really takes this much"
        )
