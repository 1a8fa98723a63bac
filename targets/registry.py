"""The names of the code-generation targets, computed when asked (not at import time, so that
importing a module never loads every profile)."""

from __future__ import annotations


def target_names() -> tuple[str, ...]:
    """``host`` (C for this CPU), then every built-in accelerator profile."""
    from targets.profiles import BUILTIN_TARGETS

    return ("host",) + tuple(t for t in BUILTIN_TARGETS if t != "host")
