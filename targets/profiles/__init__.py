"""Target profiles: chip figures as data, each with its source, and user target files.

``load_target("ascend910b")`` returns a built-in profile; ``load_target("my_chip.toml")``
loads and validates a user's file. ``BUILTIN_TARGETS`` lists the built-in names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from targets.profiles import ascend310p, ascend910b, host, mlu370x8, thinker2
from targets.profiles.loader import (
    load_target_file,
    profile_from_data,
    profile_to_data,
)
from targets.profiles.schema import (
    DTYPE_BYTES,
    ROLES,
    Buffer,
    Layout,
    MatrixUnit,
    Memory,
    Profile,
    ProfileError,
    VectorUnit,
    validate,
)

#: built-in name -> its data (the host's is detected on this machine when loaded)
_BUILTINS: dict[str, Callable[[], dict[str, Any]]] = {
    "ascend910b": lambda: ascend910b.DATA,
    "ascend310p": lambda: ascend310p.DATA,
    "mlu370x8": lambda: mlu370x8.DATA,
    "thinker2": lambda: thinker2.DATA,
    "host": host.detected,
}
BUILTIN_TARGETS: tuple[str, ...] = tuple(_BUILTINS)
_CACHE: dict[str, Profile] = {}


def builtin_profile(name: str) -> Profile:
    """A built-in profile by name (validated once, then cached)."""
    if name not in _BUILTINS:
        raise ProfileError(f"unknown target {name!r}; built-in targets: "
                           f"{', '.join(BUILTIN_TARGETS)} (or give a .toml/.json file)")
    if name not in _CACHE:
        _CACHE[name] = profile_from_data(_BUILTINS[name]())
    return _CACHE[name]


def load_target(name_or_path: str | Path) -> Profile:
    """A built-in target by name, or a user's target file (.toml or .json) by path."""
    s = str(name_or_path)
    if s in _BUILTINS:
        return builtin_profile(s)
    if s.lower().endswith((".toml", ".json")) or Path(s).exists():
        return load_target_file(s)
    return builtin_profile(s)  # raises, listing the built-ins


def all_builtin() -> list[Profile]:
    return [builtin_profile(n) for n in BUILTIN_TARGETS]


__all__ = [
    "BUILTIN_TARGETS", "DTYPE_BYTES", "ROLES", "Buffer", "Layout", "MatrixUnit", "Memory",
    "Profile", "ProfileError", "VectorUnit", "all_builtin", "builtin_profile", "load_target",
    "load_target_file", "profile_from_data", "profile_to_data", "validate",
]
