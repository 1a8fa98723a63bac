"""The build cache's housekeeping: what it holds (``qnnc cache info``), emptying it (``qnnc
cache clear``), and removing the temporary folders of builds that were killed before they
finished (``.NAME-HASH.RANDOM``), which every build does for those over an hour old.

Only entries named as qnnc names them are touched: finished builds ``TARGET-HASH`` (20 hex
digits) and their temporary ``.TARGET-HASH.RANDOM`` folders; anything else in the folder is
left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

STALE_AFTER_S = 3600.0
_BUILD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*-[0-9a-f]{20}")
_TEMP = re.compile(r"\.[A-Za-z0-9_][A-Za-z0-9_-]*-[0-9a-f]{20}\.[A-Za-z0-9_]+")


@dataclass(frozen=True)
class CacheInfo:
    folder: Path
    builds: int  # finished builds
    unfinished: int  # temporary folders: builds in progress or killed
    bytes: int


def _entries(root: Path) -> tuple[list[Path], list[Path]]:
    if not root.is_dir():
        return [], []
    builds, temps = [], []
    for p in root.iterdir():
        if p.is_symlink() or not p.is_dir():
            continue
        if _BUILD.fullmatch(p.name):
            builds.append(p)
        elif _TEMP.fullmatch(p.name):
            temps.append(p)
    return sorted(builds), sorted(temps)


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _last_change(folder: Path) -> float:
    """The newest modification time in ``folder`` (a running build keeps writing files)."""
    newest = folder.lstat().st_mtime
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, f)).st_mtime)
            except OSError:
                pass
    return newest


def cache_info(root: Path) -> CacheInfo:
    builds, temps = _entries(root)
    return CacheInfo(root, len(builds), len(temps), sum(_size(p) for p in builds + temps))


def clean_stale(root: Path, max_age_s: float = STALE_AFTER_S, now: float | None = None) -> int:
    """Remove temporary build folders unchanged for ``max_age_s``; how many were removed."""
    now = time.time() if now is None else now
    removed = 0
    for p in _entries(root)[1]:
        try:
            if now - _last_change(p) > max_age_s:
                shutil.rmtree(p)
                removed += 1
        except OSError:
            pass  # another process is cleaning it, or it just finished
    return removed


def clear_cache(root: Path) -> CacheInfo:
    """Remove every finished build and every temporary folder older than a minute (a build
    running right now keeps its own); what was removed."""
    before = cache_info(root)
    builds, _ = _entries(root)
    for p in builds:
        shutil.rmtree(p, ignore_errors=True)
    clean_stale(root, max_age_s=60.0)
    after = cache_info(root)
    return CacheInfo(root, before.builds - after.builds, before.unfinished - after.unfinished,
                     before.bytes - after.bytes)
