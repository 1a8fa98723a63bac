"""The target that target-specific passes (layout, tile) work for.

Passes are Graph -> Graph functions, so the target profile reaches them through this context:
``with for_target(profile): run_pipeline(graph, ["layout", "fold-layout", "tile"])``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from compiler.passes.manager import PassError

_PROFILE: ContextVar[Any] = ContextVar("qnnc_target_profile", default=None)


@contextlib.contextmanager
def for_target(profile: Any) -> Iterator[None]:
    token = _PROFILE.set(profile)
    try:
        yield
    finally:
        _PROFILE.reset(token)


def current_profile(pass_name: str) -> Any:
    prof = _PROFILE.get()
    if prof is None:
        raise PassError(f"pass {pass_name!r} works for a target: compile with --target "
                        "(an accelerator profile) or run it inside for_target(profile)")
    return prof
