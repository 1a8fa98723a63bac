"""Small C libraries of qnnc's own Python side (csrc/qnnc_observe.c, csrc/qnnc_interp.c),
compiled with the host's C compiler on first use and loaded with ctypes.

Each is cached next to the model builds (``$XDG_CACHE_HOME/qnnc``), in a folder keyed by the
source, the compiler and the flags, and built in a temporary folder renamed into place, so
a failed or concurrent build leaves nothing half written. Every routine built this way has
a numpy path computing the same values; without a C compiler, or if the build fails,
:func:`load` returns None and the caller uses numpy.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

CSRC = Path(__file__).resolve().parents[1] / "csrc"
#: -std=c11 (not gnu11) also keeps gcc from contracting a * b + c into one rounding
BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-std=c11")
_log = logging.getLogger(__name__)


def flags(extra: Sequence[str]) -> list[str]:
    """The build flags: :data:`BASE_FLAGS`, ``extra``, then the host CPU's ISA flags."""
    from targets.host.cpu import arch_flags, resolve_level

    return [*BASE_FLAGS, *extra, *arch_flags(resolve_level("auto"))]


def build(source: Path, stem: str, extra: Sequence[str], cache: Path) -> Path:
    """The shared library ``lib<stem>.so`` of ``source`` under ``cache``, built if absent."""
    from targets.host.build import find_cc

    cc = find_cc().split()
    fl = flags(extra)
    key = hashlib.sha256(source.read_bytes() + "\0".join([*cc, *fl]).encode()).hexdigest()
    folder = cache / f"{stem}-{key[:20]}"
    lib = folder / f"lib{stem}.so"
    if lib.is_file():
        return lib
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache))
    try:
        p = subprocess.run([*cc, *fl, str(source), "-o", str(tmp / lib.name), "-lm"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip()[:2000])
        try:
            os.rename(tmp, folder)
        except OSError:  # built concurrently by another process: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return lib


def load(source: Path, stem: str, extra: Sequence[str] = ()) -> ctypes.CDLL | None:
    """The loaded library of ``source``, or None (no C compiler, a failed build): the caller
    then uses its numpy path."""
    from targets.host.build import default_cache_dir

    try:
        return ctypes.CDLL(str(build(source, stem, extra, default_cache_dir())))
    except Exception as e:  # any failure means: compute with numpy instead
        _log.debug("%s is not available, numpy computes instead: %s", source.name, e)
        return None
